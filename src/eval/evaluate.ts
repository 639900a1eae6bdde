import { join } from 'node:path';
import { lastValueFrom, toArray } from 'rxjs';
import type { Frame, RgbaFrame } from '../ingest/frame.js';
import { imageSequenceSource } from '../ingest/image-sequence.js';
import type { Logger } from '../log.js';
import { fuseReadings } from '../model/actions.js';
import { mirrorMeans } from '../model/arpgnet.js';
import { cropToInput, templateToFrame, warpToTensor } from '../pipeline/align.js';
import type { EmotionPipeline } from '../pipeline/emotion-pipeline.js';
import { MediaPipeFaces } from '../pipeline/faces/mediapipe.js';
import { bestShown } from '../pipeline/labeller.js';
import { RateSampler } from '../pipeline/sampler.js';
import { StillFaces } from '../pipeline/faces/still-faces.js';
import type { EmotionEvent, PipelineEvent } from '../publish/events.js';
import { decodeImage } from '../ingest/still-image.js';
import { listSamples, sequenceFrames, type Format, type Sample, type Skipped } from './dataset.js';
import { expectedCalibrationError, summarise, type EvalResult } from './metrics.js';

export interface EvalOptions {
  data: string;
  format: Format;
  /** Images are face crops already: no detection, the crop is mapped onto the model input. */
  aligned: boolean;
  /** Images: run the landmarker for its blendshapes too (with `aligned`, only for them). */
  actions?: boolean | undefined;
  limit?: number | undefined;
  /** Sequences: the rate frames are analysed at (they are played at `playFps`). */
  fps: number;
  playFps: number;
  /** Faces of images encoded per onnxruntime run. */
  batch: number;
  /** Labels that may be predicted (the configured hidden ones are not). */
  shown: readonly boolean[];
  mediapipeDir: string;
  onSample?: ((record: SampleRecord) => void) | undefined;
  onProgress?: ((done: number, total: number) => void) | undefined;
}

/** What one analysed frame of a sequence showed. */
export interface FrameLabel {
  index: number;
  ts: number;
  label: string;
  top: string;
  confidence: number;
}

/** One line of `--samples`. */
export interface SampleRecord {
  path: string;
  truth: string;
  /** null: no face found, or the sample could not be evaluated (`error` says why). */
  prediction: string | null;
  probabilities: Record<string, number> | null;
  error?: string;
  /** Images with `actions`: the landmarker's blendshapes, null where it found no face. */
  actions?: Record<string, number> | null;
  /** Sequences: the label after every analysed window, and when the right one first showed. */
  frames?: FrameLabel[];
  timeToLabelMs?: number | null;
}

export interface EvalReport extends EvalResult {
  format: Format;
  fps: number | null;
  /** Samples that could not be evaluated (counted wrong, like no face) and class folders skipped. */
  failed: number;
  skipped: Skipped[];
  /** Expected calibration error of the final probabilities over the samples with a prediction. */
  ece: number;
  /** Sequences: median media time from the first frame until the shown label is the true one (over those where it ever is). */
  timeToLabelMs?: { median: number | null; reached: number } | undefined;
  seconds: number;
}

interface Outcome {
  pred: number;
  record: SampleRecord;
}

async function evaluateImages(pipeline: EmotionPipeline, samples: Sample[], o: EvalOptions, log: Logger): Promise<Outcome[]> {
  const m = pipeline.model;
  const { width, height } = m.preprocess.inputSize;
  const per = m.channels * width * height;
  // a face held still reaches the head as the live path gives it: averaged with its mirror
  // in every frame (average), or the mirror every other frame (alternate)
  const mode = pipeline.mirror;
  const views = mode === 'none' ? 1 : 2;
  const faces = new Float32Array(o.batch * views * per);
  const t = m.window;
  const app = new Float32Array(o.batch * t * m.appDim);
  const rel = new Float32Array(o.batch * t * m.relDim);
  const valid = new Float32Array(o.batch * t).fill(1);
  const lm =
    o.aligned && !o.actions
      ? null
      : await MediaPipeFaces.create({
          modelPath: join(o.mediapipeDir, 'mediapipe', 'face_landmarker.task'),
          maxFaces: 1,
          mode: 'IMAGE',
          actions: o.actions ?? false,
        });
  const finder = lm && new StillFaces(lm);
  const out: Outcome[] = [];
  try {
    for (let start = 0; start < samples.length; start += o.batch) {
      const chunk = samples.slice(start, start + o.batch);
      const slots: number[] = []; // chunk index of each encoded face
      const outcomes: Outcome[] = chunk.map((s) => ({
        pred: -1,
        record: { path: s.path, truth: m.labels[s.label]!, prediction: null, probabilities: null },
      }));
      for (const [i, s] of chunk.entries()) {
        let img: RgbaFrame;
        try {
          img = decodeImage(s.path);
        } catch (e) {
          outcomes[i]!.record.error = (e as Error).message;
          log.warn({ sample: s.path }, (e as Error).message);
          continue;
        }
        let sim;
        if (finder) {
          const frame: Frame = { ...img, ts: start + i, index: 0, arrivedAt: 0 };
          const face = (await finder.detect(frame, start + i))[0];
          if (o.actions) outcomes[i]!.record.actions = face?.actions ?? null;
          if (!face && !o.aligned) continue; // no face: counted wrong, reported as such
          if (face && !o.aligned) sim = templateToFrame(face.points, m.preprocess.template);
        }
        sim ??= cropToInput(img.width, img.height, width, height);
        for (let v = 0; v < views; v++) warpToTensor(img, sim, m.preprocess, faces, (slots.length * views + v) * per, v === 1);
        slots.push(i);
      }
      if (slots.length) {
        const raw = await m.encode(faces, slots.length * views);
        // averaged once per face; alternate keeps both views for the window's slots to take turns
        const emb = mode === 'average' ? mirrorMeans(raw, slots.length) : raw;
        const per = mode === 'alternate' ? 2 : 1;
        // a still image is one frame held for the whole window, as training evaluates stills
        // slot k of a held face's window: its own view, or (alternate) the mirror every other frame
        const slot = (v: Float32Array, d: number, s: number, k: number): Float32Array => {
          const e = s * per + (k % per);
          return v.subarray(e * d, (e + 1) * d);
        };
        for (let s = 0; s < slots.length; s++) {
          for (let k = 0; k < t; k++) {
            app.set(slot(emb.app, m.appDim, s, k), (s * t + k) * m.appDim);
            rel.set(slot(emb.rel, m.relDim, s, k), (s * t + k) * m.relDim);
          }
        }
        const probs = await m.classify(app, rel, valid, slots.length);
        const c = m.labels.length;
        // as the live path reads a window whose face came with blendshapes
        if (pipeline.actions) {
          const r = await fuseReadings(
            pipeline.actions,
            slots.map((i) => outcomes[i]!.record.actions),
            probs,
            c,
          );
          for (const u of r.unusable) log.warn({ sample: chunk[slots[u.slot]!]!.path }, `${u.why}: read without blendshapes`);
        }
        slots.forEach((i, s) => {
          const p = probs.subarray(s * c, (s + 1) * c);
          const best = bestShown(p, o.shown);
          const o2 = outcomes[i]!;
          o2.pred = best;
          o2.record.prediction = m.labels[best]!;
          o2.record.probabilities = Object.fromEntries(m.labels.map((l, k) => [l, Math.round(p[k]! * 1e4) / 1e4]));
        });
      }
      for (const oc of outcomes) {
        out.push(oc);
        o.onSample?.(oc.record);
      }
      o.onProgress?.(out.length, samples.length);
    }
  } finally {
    await lm?.close();
  }
  return out;
}

/** How many frames of n played at playFps the sampler keeps at fps. */
function analysedCount(n: number, playFps: number, fps: number): number {
  const s = new RateSampler(fps);
  let k = 0;
  for (let i = 0; i < n; i++) if (s.keep((i * 1000) / playFps)) k++;
  return k;
}

async function evaluateSequence(pipeline: EmotionPipeline, s: Sample, o: EvalOptions, minFrames: number, log: Logger): Promise<Outcome> {
  const m = pipeline.model;
  const record: SampleRecord = { path: s.path, truth: m.labels[s.label]!, prediction: null, probabilities: null };
  const files = sequenceFrames(s.path);
  const analysed = analysedCount(files.length, o.playFps, o.fps);
  if (analysed < minFrames) {
    record.error = `${s.path}: ${files.length} frames; at ${o.fps} fps ${analysed} are analysed, fewer than the ${minFrames} a label needs`;
    log.warn({ sample: s.path }, record.error);
    return { pred: -1, record };
  }
  const source = imageSequenceSource(s.path, files, o.playFps, (file, message) => log.warn({ sample: s.path, frame: file }, message));
  const run = await pipeline.analyse(source, { fps: o.fps });
  const events: PipelineEvent[] = await lastValueFrom(run.events$.pipe(toArray()));
  const emotions = events.filter((e): e is EmotionEvent => e.type === 'emotion');
  const fps = o.fps;
  record.frames = emotions.map((e) => {
    const best = bestShown(
      m.labels.map((l) => e.scores[l] ?? 0),
      o.shown,
    );
    return { index: Math.round((e.ts * o.playFps) / 1000), ts: e.ts, label: e.label, top: m.labels[best]!, confidence: e.confidence };
  });
  const hit = emotions.find((e) => e.label === record.truth);
  record.timeToLabelMs = hit ? hit.ts : null;
  const last = emotions.at(-1);
  if (!last) {
    const bad = source.stats().decodeErrors;
    record.error = bad
      ? `${s.path}: ${bad} of ${files.length} frames unreadable; the rest gave no label at ${fps} fps`
      : `${s.path}: no face in the analysed frames at ${fps} fps`;
    return { pred: -1, record };
  }
  const p = m.labels.map((l) => last.scores[l] ?? 0);
  const best = bestShown(p, o.shown);
  record.prediction = m.labels[best]!;
  record.probabilities = Object.fromEntries(m.labels.map((l, k) => [l, p[k]!]));
  return { pred: best, record };
}

/** Accuracy of the pipeline on a labelled folder, as `arpgnet-edge eval` reports it. */
export async function evaluate(pipeline: EmotionPipeline, o: EvalOptions, minFrames: number, log: Logger): Promise<EvalReport> {
  const t0 = performance.now();
  const m = pipeline.model;
  const { samples, skipped } = listSamples(o.data, o.format, m.labels, o.limit);
  if (!samples.length) throw new Error(`nothing to evaluate: ${skipped.map((s) => `${s.path}: ${s.reason}`).join('; ')}`);
  for (const s of skipped) log.warn({ path: s.path }, `skipped: ${s.reason}`);
  let outcomes: Outcome[];
  if (o.format === 'images') {
    outcomes = await evaluateImages(pipeline, samples, o, log);
  } else {
    outcomes = [];
    for (const s of samples) {
      let oc: Outcome;
      try {
        oc = await evaluateSequence(pipeline, s, o, minFrames, log);
      } catch (e) {
        // one unreadable sequence is named and counted; the evaluation goes on
        log.warn({ sample: s.path }, (e as Error).message);
        oc = {
          pred: -1,
          record: { path: s.path, truth: m.labels[s.label]!, prediction: null, probabilities: null, error: (e as Error).message },
        };
      }
      outcomes.push(oc);
      o.onSample?.(oc.record);
      o.onProgress?.(outcomes.length, samples.length);
    }
  }
  const truth = samples.map((s) => s.label);
  const pred = outcomes.map((oc) => oc.pred);
  const scored = outcomes.filter((oc) => oc.record.probabilities);
  const report: EvalReport = {
    ...summarise(truth, pred, m.labels),
    format: o.format,
    fps: o.format === 'sequences' ? o.fps : null,
    failed: outcomes.filter((oc) => oc.record.error).length,
    skipped,
    ece: expectedCalibrationError(
      scored.map((oc) => m.labels.map((l) => oc.record.probabilities![l]!)),
      scored.map((oc) => m.labels.indexOf(oc.record.truth)),
    ),
    seconds: Math.round((performance.now() - t0) / 10) / 100,
  };
  if (o.format === 'sequences') {
    const times = outcomes.map((oc) => oc.record.timeToLabelMs).filter((v): v is number => typeof v === 'number');
    times.sort((a, b) => a - b);
    const mid = (times.length - 1) / 2;
    const median = times.length ? (times[Math.floor(mid)]! + times[Math.ceil(mid)]!) / 2 : null;
    report.timeToLabelMs = { median, reached: times.length };
  }
  return report;
}
