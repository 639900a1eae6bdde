import type { Frame } from '../ingest/frame.js';
import type { ActionsBranch } from '../model/actions.js';
import type { Arpgnet, Embeddings } from '../model/arpgnet.js';
import type { FaceLeaveEvent, FaceSummaryEvent } from '../publish/events.js';
import { envelope, faceLeave, faceSummary, type Envelope } from '../publish/envelopes.js';
import type { Similarity } from './align.js';
import type { DetectedFace, FaceFinder } from './faces/face.js';
import { selectFaces, type FacePick, type LeftOut } from './faces/select.js';
import { Labeller, type LabelPolicy } from './labeller.js';
import { circumplex } from './readings/affect.js';
import type { AttentionLimits } from './readings/attention.js';
import { FaceBaseline } from './readings/baseline.js';
import { FaceSummary } from './readings/summary.js';
import { FaceTracker } from './tracker.js';
import { EmbeddingWindow } from './window.js';

export interface StreamStateOptions {
  stream: string;
  room?: string | undefined;
  model: Arpgnet;
  /** The encoder call, where it is shared with other streams (batched); else the model's own. */
  encode?: ((faces: Float32Array, n: number) => Promise<Embeddings>) | undefined;
  /** The head call, where it runs elsewhere (a face worker); else the model's own. */
  classify?: ((app: Float32Array, rel: Float32Array, valid: Float32Array, n: number) => Promise<Float32Array>) | undefined;
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
  /** Which faces are analysed (their count is maxFaces). */
  pick: Omit<FacePick, 'maxFaces'>;
  attention: AttentionLimits;
  /** A summary of each face every this many ms (null: only when it leaves). */
  summaryEveryMs: number | null;
  /** Each face's personal baseline from its first this many ms (null: none, unless calibrated). */
  baselineMs: number | null;
  /**
   * False leaves out valence/arousal, attention, summaries and the baseline (the events then
   * carry neutral, unknown values): only so bench:readings can time the path without them in
   * the same run. Not a setting: v3 promises these fields.
   */
  readings?: boolean | undefined;
  /**
   * For an encoder without its own mirror pass. average: each face is encoded with its
   * mirror image and the two embeddings averaged (as 1.3.0's graph did); alternate: every
   * other frame of a track is encoded as its mirror image instead, one encoder run per
   * face-frame; none: the faces as they are.
   */
  mirror?: 'average' | 'alternate' | 'none' | undefined;
  /** The facial-actions branch and where its classes sit in the head's labels (null: off). */
  actions?: ActionsBranch | null | undefined;
}

const sharedFloats = (n: number): Float32Array => new Float32Array(new SharedArrayBuffer(n * 4));

/** How long a face calibrated on request takes its reference over, when the config names no baseline time. */
export const CALIBRATE_MS = 3000;

export interface TrackState {
  window: EmbeddingWindow;
  labeller: Labeller;
  lastLabel: string | null;
  lastEmitTs: number;
  summary: FaceSummary;
  baseline: FaceBaseline | null;
  /** Frames of the track encoded so far (which of them are mirrored). */
  encoded: number;
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
  /** Crops encoded per face: two where each is averaged with its mirror. */
  get views(): 1 | 2 {
    return this.o.mirror === 'average' ? 2 : 1;
  }

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
  /** Windows read with the facial-actions branch, without it (no blendshapes that frame), and with blendshapes it could not use. */
  readonly actionsFusion = { fused: 0, without: 0, unusable: 0 };
  /** Faces found but not analysed (analysis.faces). */
  readonly leftOut: LeftOut = { tooSmall: 0, overLimit: 0 };
  /** Each label's place on the circumplex (readings/affect.ts), in the model's order. */
  readonly circumplex: Array<[number, number]>;

  constructor(readonly o: StreamStateOptions) {
    const m = o.model;
    const { width, height } = m.preprocess.inputSize;
    this.tracker = new FaceTracker({ maxMissMs: o.trackMissMs, minIou: 0.2 });
    // in shared memory when a worker runs the head (and the encoder), so it reads them where
    // they are; onnxruntime takes no shared memory, so on this thread they are plain
    const floats = o.classify ? sharedFloats : (n: number): Float32Array => new Float32Array(n);
    this.faceBatch = floats(o.maxFaces * this.views * m.channels * width * height);
    this.headApp = floats(o.maxFaces * m.window * m.appDim);
    this.headRel = floats(o.maxFaces * m.window * m.relDim);
    this.headValid = floats(o.maxFaces * m.window);
    this.circumplex = circumplex(m.labels);
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

  /** The faces to analyse (analysis.faces); the rest are counted. */
  select(faces: DetectedFace[], frameHeight: number): DetectedFace[] {
    return selectFaces(faces, frameHeight, { ...this.o.pick, maxFaces: this.o.maxFaces }, this.leftOut);
  }

  newTrackState(ts: number): TrackState {
    const m = this.o.model;
    return {
      window: new EmbeddingWindow(m.window, m.appDim, m.relDim),
      labeller: new Labeller(m.labels, this.o.policy),
      lastLabel: null,
      lastEmitTs: -Infinity,
      summary: new FaceSummary(this.o.maxGapMs, ts),
      baseline: this.o.baselineMs === null ? null : new FaceBaseline(m.labels.length, this.o.baselineMs),
      encoded: 0,
    };
  }

  /**
   * Takes a new personal baseline for the stream's faces (every one, or one track) from
   * their next readings, and with it a new onset reference for their labels; false when
   * there is no such face.
   */
  calibrate(track?: string): boolean {
    const m = this.o.model;
    let n = 0;
    for (const [id, st] of this.states) {
      if (track !== undefined && id !== track) continue;
      st.baseline ??= new FaceBaseline(m.labels.length, this.o.baselineMs ?? CALIBRATE_MS);
      st.baseline.restart();
      st.labeller.restartOnset();
      n++;
    }
    return n > 0;
  }

  /** A face's summary so far; `final` as it leaves. */
  summaryOf(track: string, st: TrackState, ts: number, final: boolean): FaceSummaryEvent {
    st.summary.lastSentTs = ts;
    return faceSummary(this.base(ts), track, st.summary.fromTs ?? ts, final, st.summary.tally.summary());
  }

  /** A face that leaves: its last summary (if it was ever read), then face_leave. */
  leave(track: string, ts: number, reason: FaceLeaveEvent['reason']): Array<FaceLeaveEvent | FaceSummaryEvent> {
    const st = this.states.get(track);
    this.states.delete(track);
    const last = st && st.summary.tally.readings > 0 ? [this.summaryOf(track, st, ts, true)] : [];
    return [...last, faceLeave(this.base(ts), track, reason)];
  }

  /** Closes every track at the end of the stream. */
  finish(ts: number): Array<FaceLeaveEvent | FaceSummaryEvent> {
    const events = this.tracker.closeAll().flatMap((tr) => this.leave(tr.id, ts, 'stream_end'));
    this.states.clear();
    return events;
  }
}
