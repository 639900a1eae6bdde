import type { Frame } from '../../ingest/frame.js';
import type { PipelineEvent } from '../../publish/events.js';
import type { Embeddings } from '../../model/arpgnet.js';
import type { DetectedFace } from '../faces/face.js';
import type { Track } from '../tracker.js';
import type { Reading } from '../labeller.js';
import type { Affect, Attention } from '../../publish/events.js';
import type { BaselineReading } from '../../publish/envelopes.js';
import type { Pose } from '../faces/face.js';
import type { TrackState } from '../stream-state.js';

/**
 * What one analysed frame carries from stage to stage. Each stage adds its part and
 * hands the rest on untouched, so a stage's input type says what it may read.
 */

/** Detection started (on a worker thread): the next frame's can start before this one is encoded. */
export interface Detecting {
  frame: Frame;
  faces: Promise<DetectedFace[]>;
}

export interface Found {
  frame: Frame;
  faces: DetectedFace[];
}

/** Faces matched to tracks; face_enter / face_leave so far. */
export interface Tracked extends Found {
  /** Tracks seen in this frame, in the order their crops sit in the face batch. */
  seen: Track[];
  events: PipelineEvent[];
}

export interface Encoded extends Tracked {
  emb: Embeddings;
}

/** A track whose window is due for the head. */
export interface Due {
  track: Track;
  state: TrackState;
  window: { frames: number; spanMs: number };
}

export interface Windowed extends Tracked {
  due: Due[];
}

export interface Classified extends Windowed {
  /** One row of class probabilities per due window. */
  probs: Float32Array;
}

/** What one window reads as, beside its label. */
export interface FullReading {
  due: Due;
  reading: Reading;
  affect: Affect;
  attention: Attention;
  /** The mesh's head pose, else the five points' (null when they give none). */
  pose: Pose | null;
  baseline: BaselineReading | null;
}

export interface Labelled extends Classified {
  /** The readings that become emotion events (emit mode decides which). */
  readings: FullReading[];
}
