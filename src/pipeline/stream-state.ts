import type { Frame } from '../ingest/frame.js';
import type { Arpgnet, Embeddings } from '../model/arpgnet.js';
import type { FaceLeaveEvent } from '../publish/events.js';
import { envelope, faceLeave, type Envelope } from '../publish/envelopes.js';
import type { Similarity } from './align.js';
import type { DetectedFace, FaceFinder } from './faces/face.js';
import { Labeller, type LabelPolicy } from './labeller.js';
import { FaceTracker } from './tracker.js';
import { EmbeddingWindow } from './window.js';

export interface StreamStateOptions {
  stream: string;
  room?: string | undefined;
  model: Arpgnet;
  /** The encoder call, where it is shared with other streams (batched); else the model's own. */
  encode?: ((faces: Float32Array, n: number) => Promise<Embeddings>) | undefined;
  /** Only asked to detect: whoever opened it closes it. */
  faces: Pick<FaceFinder, 'detect'>;
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
  observe?: ((stage: Stage, ms: number) => void) | undefined;
  /** Overrides the landmark alignment, e.g. for images that are already face crops. */
  align?: ((face: DetectedFace, frame: Frame) => Similarity) | undefined;
}

export interface TrackState {
  window: EmbeddingWindow;
  labeller: Labeller;
  lastLabel: string | null;
  lastEmitTs: number;
}

export type Stage = 'landmarks' | 'align' | 'encoder' | 'head';

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
 * One stream's state, shared by its stages (stages/, composed in analysis.ts): the
 * tracker, each track's window and labeller, the batch buffers (sized for maxFaces
 * once; nothing per frame grows) and the counters the stream reports.
 */
export class StreamState {
  readonly tracker: FaceTracker;
  readonly states = new Map<string, TrackState>();
  readonly faceBatch: Float32Array;
  readonly headApp: Float32Array;
  readonly headRel: Float32Array;
  readonly headValid: Float32Array;
  readonly times: StageTimes = { landmarks: 0, align: 0, encoder: 0, head: 0, faceFrames: 0, windows: 0 };
  framesWithoutFace = 0;
  emotions = 0;
  /** Frames through every stage. */
  analysed = 0;
  /** Frames whose analysis failed (each reported as a non-fatal error event). */
  failed = 0;
  /** Frames left out to keep the analysis rate. */
  sampledOut = 0;
  facesOverLimit = 0;

  constructor(readonly o: StreamStateOptions) {
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

  time(stage: Stage, since: number): void {
    const ms = performance.now() - since;
    this.times[stage] += ms;
    this.o.observe?.(stage, ms);
  }

  base(ts: number): Envelope {
    return envelope(this.o.stream, this.o.room, ts);
  }

  /** More faces than maxFaces: the largest are kept, the rest counted. */
  keepLargest(faces: DetectedFace[]): DetectedFace[] {
    if (faces.length <= this.o.maxFaces) return faces;
    this.facesOverLimit += faces.length - this.o.maxFaces;
    return [...faces].sort((a, b) => b.box.w * b.box.h - a.box.w * a.box.h).slice(0, this.o.maxFaces);
  }

  newTrackState(): TrackState {
    const m = this.o.model;
    return {
      window: new EmbeddingWindow(m.window, m.appDim, m.relDim),
      labeller: new Labeller(m.labels, this.o.policy),
      lastLabel: null,
      lastEmitTs: -Infinity,
    };
  }

  /** Closes every track at the end of the stream. */
  finish(ts: number): FaceLeaveEvent[] {
    this.states.clear();
    return this.tracker.closeAll().map((tr) => faceLeave(this.base(ts), tr.id, 'stream_end'));
  }
}
