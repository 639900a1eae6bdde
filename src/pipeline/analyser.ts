import type { Frame } from '../ingest/frame.js';
import type { Arpgnet } from '../model/arpgnet.js';
import type { PipelineEvent, EmotionEvent } from '../publish/events.js';
import { wallTime } from '../publish/events.js';
import { templateToFrame, warpToTensor, type Similarity } from './align.js';
import type { DetectedFace } from './landmarker.js';
import { Labeller, type LabelPolicy, type Reading } from './labeller.js';
import { FaceTracker, type Track } from './tracker.js';
import { EmbeddingWindow } from './window.js';

/** Anything that finds faces in a frame: MediaPipe live, or a fixed crop for aligned images. */
export interface FaceFinder {
  detect(frame: Frame, ts: number): DetectedFace[] | Promise<DetectedFace[]>;
}

export interface AnalyserOptions {
  stream: string;
  room?: string | undefined;
  model: Arpgnet;
  faces: FaceFinder;
  maxFaces: number;
  /** Run the window head every `stride` new frames of a track. */
  stride: number;
  /** Frames a track needs before its first emotion event (the rest of the window is masked). */
  minFrames: number;
  /** Smoothing, hidden labels, the uncertain threshold and hysteresis (see labeller.ts). */
  policy: LabelPolicy;
  /** Emotion events for every window, or only when the label changes plus a heartbeat. */
  emit?: { mode: 'window' | 'change'; heartbeatMs: number } | undefined;
  /** A face unseen for longer than this restarts its window (the model expects evenly spaced frames). */
  maxGapMs: number;
  trackMissMs: number;
  /** Told the time of each stage of each analysed frame (metrics). */
  observe?: ((stage: 'landmarks' | 'align' | 'encoder' | 'head', ms: number) => void) | undefined;
  /** Overrides the landmark alignment, e.g. for images that are already face crops. */
  align?: ((face: DetectedFace, frame: Frame) => Similarity) | undefined;
}

interface TrackState {
  window: EmbeddingWindow;
  labeller: Labeller;
  lastLabel: string | null;
  lastEmitTs: number;
}

/** Milliseconds spent per stage, summed over the stream. */
export interface StageTimes {
  landmarks: number;
  align: number;
  encoder: number;
  head: number;
  faceFrames: number;
  windows: number;
}

/**
 * One stream's analysis: faces -> tracks -> aligned tensors -> encoder once per face
 * -> per-track windows -> head when due -> emotion events. Buffers are sized for
 * maxFaces once; nothing per frame grows.
 */
export class StreamAnalyser {
  private readonly tracker: FaceTracker;
  private readonly states = new Map<string, TrackState>();
  private readonly faceBatch: Float32Array;
  private readonly headApp: Float32Array;
  private readonly headRel: Float32Array;
  private readonly headValid: Float32Array;
  readonly times: StageTimes = { landmarks: 0, align: 0, encoder: 0, head: 0, faceFrames: 0, windows: 0 };
  framesWithoutFace = 0;
  emotions = 0;
  analysed = 0;
  facesOverLimit = 0;

  constructor(private readonly o: AnalyserOptions) {
    const m = o.model;
    const { width, height } = m.preprocess.inputSize;
    this.tracker = new FaceTracker({ maxMissMs: o.trackMissMs, minIou: 0.2 });
    this.faceBatch = new Float32Array(o.maxFaces * m.channels * width * height);
    this.headApp = new Float32Array(o.maxFaces * m.window * m.appDim);
    this.headRel = new Float32Array(o.maxFaces * m.window * m.relDim);
    this.headValid = new Float32Array(o.maxFaces * m.window);
  }

  /** Face tracks alive now. */
  get tracks(): number {
    return this.states.size;
  }

  private time(stage: 'landmarks' | 'align' | 'encoder' | 'head', since: number): void {
    const ms = performance.now() - since;
    this.times[stage] += ms;
    this.o.observe?.(stage, ms);
  }

  private base(ts: number): { v: 2; stream: string; room?: string; ts: number; wallTime: string } {
    return { v: 2, stream: this.o.stream, ...(this.o.room ? { room: this.o.room } : {}), ts: Math.max(0, ts), wallTime: wallTime() };
  }

  /** Detect, then analyse: one frame start to end. */
  async process(frame: Frame): Promise<PipelineEvent[]> {
    return this.analyse(frame, await this.detect(frame));
  }

  /**
   * The first stage alone (faces and landmarks). Split from `analyse` so a stream can
   * detect its next frame, on a landmark worker, while this thread analyses the last one.
   */
  async detect(frame: Frame): Promise<DetectedFace[]> {
    const t = performance.now();
    let faces = await this.o.faces.detect(frame, frame.ts);
    if (faces.length > this.o.maxFaces) {
      this.facesOverLimit += faces.length - this.o.maxFaces;
      faces = [...faces].sort((a, b) => b.box.w * b.box.h - a.box.w * a.box.h).slice(0, this.o.maxFaces);
    }
    this.time('landmarks', t);
    return faces;
  }

  /** Everything after detection: track, align, encode, window, classify, label, events. Frames in order. */
  async analyse(frame: Frame, faces: DetectedFace[]): Promise<PipelineEvent[]> {
    const { model } = this.o;
    const events: PipelineEvent[] = [];
    const ts = frame.ts;
    this.analysed++;
    let t: number;
    const upd = this.tracker.update(faces, ts);
    for (const tr of upd.left) {
      this.states.delete(tr.id);
      events.push({ ...this.base(ts), type: 'face_leave', track: tr.id, reason: 'lost' });
    }
    for (const tr of upd.entered) {
      this.states.set(tr.id, {
        window: new EmbeddingWindow(model.window, model.appDim, model.relDim),
        labeller: new Labeller(model.labels, this.o.policy),
        lastLabel: null,
        lastEmitTs: -Infinity,
      });
      events.push({ ...this.base(ts), type: 'face_enter', track: tr.id, box: tr.face.box });
    }
    if (!upd.seen.length) {
      this.framesWithoutFace++;
      return events;
    }

    t = performance.now();
    const per = this.faceBatch.length / this.o.maxFaces;
    upd.seen.forEach((tr, i) => {
      const sim = this.o.align ? this.o.align(tr.face, frame) : templateToFrame(tr.face.points, model.preprocess.template);
      warpToTensor(frame, sim, model.preprocess, this.faceBatch, i * per);
    });
    this.time('align', t);

    t = performance.now();
    const emb = await model.encode(this.faceBatch, upd.seen.length);
    this.time('encoder', t);
    this.times.faceFrames += upd.seen.length;

    const due: Array<{ track: Track; state: TrackState }> = [];
    upd.seen.forEach((tr, i) => {
      const st = this.states.get(tr.id)!;
      if (ts - st.window.lastTs > this.o.maxGapMs) {
        st.window.reset();
        st.labeller.reset();
      }
      st.window.push(
        emb.app.subarray(i * model.appDim, (i + 1) * model.appDim),
        emb.rel.subarray(i * model.relDim, (i + 1) * model.relDim),
        ts,
      );
      if (st.window.due(this.o.stride, this.o.minFrames)) due.push({ track: tr, state: st });
    });
    if (!due.length) return events;

    t = performance.now();
    const frames = due.map(({ state }) => ({ frames: state.window.frames, spanMs: state.window.spanMs }));
    due.forEach(({ state }, slot) => state.window.writeTo(this.headApp, this.headRel, this.headValid, slot));
    const probs = await model.classify(this.headApp, this.headRel, this.headValid, due.length);
    this.time('head', t);
    this.times.windows += due.length;

    const c = model.labels.length;
    due.forEach(({ track, state }, slot) => {
      const reading = state.labeller.update(probs.subarray(slot * c, (slot + 1) * c));
      if (this.shouldEmit(state, reading.label, ts)) events.push(this.emotion(track, reading, frames[slot]!, ts, frame));
    });
    return events;
  }

  /** Every window, or (emit 'change') when the shown label changes and at least every heartbeat. */
  private shouldEmit(st: TrackState, label: string, ts: number): boolean {
    if (this.o.emit?.mode !== 'change') return true;
    if (label === st.lastLabel && ts - st.lastEmitTs < this.o.emit.heartbeatMs) return false;
    st.lastLabel = label;
    st.lastEmitTs = ts;
    return true;
  }

  private emotion(track: Track, r: Reading, window: { frames: number; spanMs: number }, ts: number, frame: Frame): EmotionEvent {
    const { model } = this.o;
    // hidden labels are not offered as scores either: what is not shown is not suggested
    const scores: Record<string, number> = {};
    model.labels.forEach((l, k) => {
      if (this.o.policy.shown[k]) scores[l] = Math.round(r.probs[k]! * 1e4) / 1e4;
    });
    this.emotions++;
    return {
      ...this.base(ts),
      type: 'emotion',
      track: track.id,
      window,
      label: r.label,
      confidence: Math.round(r.confidence * 1e4) / 1e4,
      scores,
      box: track.face.box,
      model: { name: model.name, version: model.version },
      latencyMs: Math.round((performance.now() - frame.arrivedAt) * 100) / 100,
      quality: {
        faceSizePx: Math.round(track.face.box.h * frame.height),
        yaw: track.face.pose?.yaw ?? null,
        pitch: track.face.pose?.pitch ?? null,
        roll: track.face.pose?.roll ?? null,
        detection: track.face.score ?? null,
      },
      ...(track.face.actions ? { actions: track.face.actions } : {}),
    };
  }

  /** Closes every track at the end of the stream. */
  finish(ts: number): PipelineEvent[] {
    this.states.clear();
    return this.tracker
      .closeAll()
      .map((tr) => ({ ...this.base(ts), type: 'face_leave' as const, track: tr.id, reason: 'stream_end' as const }));
  }
}
