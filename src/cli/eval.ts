import { readdirSync, statSync } from 'node:fs';
import { extname, join } from 'node:path';
import { SingleBar, Presets } from 'cli-progress';
import { lastValueFrom, toArray } from 'rxjs';
import type { Config } from '../config.js';
import { formatResult, summarise } from '../eval/metrics.js';
import type { Frame } from '../ingest/frame.js';
import { openSource } from '../ingest/source.js';
import type { Logger } from '../log.js';
import { labelIndex } from '../model/labels.js';
import { cropToInput, templateToFrame, withView, type Similarity } from '../pipeline/align.js';
import type { FaceFinder } from '../pipeline/analyser.js';
import { EmotionPipeline } from '../pipeline/emotion-pipeline.js';
import { FaceLandmarks, type DetectedFace } from '../pipeline/landmarker.js';
import { StillFaces } from '../pipeline/still-faces.js';
import type { EmotionEvent, PipelineEvent } from '../publish/events.js';

export interface EvalFlags {
  data: string;
  format: string;
  aligned?: boolean | undefined;
  json?: boolean | undefined;
  limit?: number | undefined;
}

const IMAGE_EXT = new Set(['.png', '.jpg', '.jpeg', '.bmp']);

interface Sample {
  path: string;
  label: number;
}

/** DIR/<class>/<entry>: entries are images or sequence folders; unknown classes are refused by name. */
function listSamples(dir: string, format: 'images' | 'sequences', labels: readonly string[], limit?: number): Sample[] {
  let classes: string[];
  try {
    classes = readdirSync(dir)
      .filter((c) => statSync(join(dir, c)).isDirectory())
      .sort();
  } catch {
    throw new Error(`${dir}: not a readable folder`);
  }
  if (!classes.length) throw new Error(`${dir}: no class folders (expected ${dir}/<class>/...)`);
  const out: Sample[] = [];
  for (const c of classes) {
    const label = labelIndex(c, labels);
    if (typeof label === 'string') throw new Error(`${join(dir, c)}: ${label}`);
    const entries = readdirSync(join(dir, c))
      .sort()
      .filter((e) => (format === 'images' ? IMAGE_EXT.has(extname(e).toLowerCase()) : statSync(join(dir, c, e)).isDirectory()));
    if (!entries.length) throw new Error(`${join(dir, c)}: empty class folder (no ${format === 'images' ? 'images' : 'sequence folders'})`);
    out.push(...entries.slice(0, limit ?? entries.length).map((e) => ({ path: join(dir, c, e), label })));
  }
  return out;
}

const lastEmotion = (events: readonly PipelineEvent[]): EmotionEvent | undefined =>
  events.filter((e): e is EmotionEvent => e.type === 'emotion').at(-1);

/** An aligned crop is the face: one face covering the frame, aligned by cropToInput. */
const wholeFrame: FaceFinder = {
  detect: () => [
    {
      box: { x: 0, y: 0, w: 1, h: 1 },
      points: [
        [0, 0],
        [0, 0],
        [0, 0],
        [0, 0],
        [0, 0],
      ],
    },
  ],
};

async function classifyStill(pipeline: EmotionPipeline, finder: FaceFinder, frame: Frame, aligned: boolean): Promise<number> {
  const m = pipeline.model;
  const { width, height } = m.preprocess.inputSize;
  const views = m.preprocess.stillViews?.views ?? [[0, 1, 0, 0] as const];
  let k = 0;
  // frame k of the still clip is seen through view k (the contract's stillViews), as in training pseudo-clips
  const align = (face: DetectedFace, fr: Frame): Similarity => {
    const base = aligned ? cropToInput(fr.width, fr.height, width, height) : templateToFrame(face.points, m.preprocess.template);
    return withView(base, views[k % views.length]!, width, height);
  };
  const analyser = pipeline.createAnalyser('eval', finder, {
    minFrames: m.window,
    stride: m.window,
    smoothing: 1,
    maxGapMs: Infinity,
    trackMissMs: Infinity,
    maxFaces: 1,
    align,
  });
  const events: PipelineEvent[] = [];
  for (k = 0; k < m.window; k++) {
    events.push(...(await analyser.process({ ...frame, ts: (k * 1000) / 30, index: k, arrivedAt: performance.now() })));
  }
  const e = lastEmotion(events);
  return e ? m.labels.indexOf(e.label) : -1;
}

export async function evalCommand(cfg: Config, flags: EvalFlags, log: Logger): Promise<number> {
  if (flags.format !== 'images' && flags.format !== 'sequences')
    throw new Error(`--format must be 'images' or 'sequences', not '${flags.format}'`);
  const format = flags.format;
  const pipeline = await EmotionPipeline.create(cfg, log);
  const labels = pipeline.model.labels;
  const samples = listSamples(flags.data, format, labels, flags.limit);
  const bar = new SingleBar(
    { format: ' eval {bar} {value}/{total} | {eta_formatted} left', stream: process.stderr, noTTYOutput: false },
    Presets.shades_classic,
  );
  bar.start(samples.length, 0);
  const truth: number[] = [];
  const pred: number[] = [];
  const still =
    format !== 'images'
      ? null
      : flags.aligned
        ? wholeFrame
        : new StillFaces(
            await FaceLandmarks.create({
              modelPath: join(cfg.models.mediapipeDir, 'mediapipe', 'face_landmarker.task'),
              maxFaces: 1,
              mode: 'IMAGE',
            }),
          );
  for (const s of samples) {
    let p = -1;
    try {
      const source = await openSource(s.path, {
        maxSide: flags.aligned ? 4096 : cfg.analysis.maxSide,
        sequenceFps: 30,
        realtime: false,
        decoder: cfg.ingest.decoder,
        gstPipeline: cfg.ingest.gstPipeline,
      });
      if (format === 'images') {
        for await (const frame of source.frames()) p = await classifyStill(pipeline, still!, frame, flags.aligned ?? false);
      } else {
        const run = await pipeline.analyse(source, { fps: 30 });
        const e = lastEmotion(await lastValueFrom(run.events$.pipe(toArray())));
        p = e ? labels.indexOf(e.label) : -1;
      }
    } catch (e) {
      // an unreadable sample counts as wrong, like a sample with no face, and is named
      log.warn({ sample: s.path }, (e as Error).message);
    }
    truth.push(s.label);
    pred.push(p);
    bar.increment();
  }
  bar.stop();
  await pipeline.close();
  const result = summarise(truth, pred, labels);
  process.stdout.write(flags.json ? `${JSON.stringify(result)}\n` : `${formatResult(result)}\n`);
  return 0;
}
