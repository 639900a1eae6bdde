/**
 * Emotion events, schema v2 (src/publish/events.v2.schema.json is the published contract).
 * v2 adds to v1 a face's quality (size, head pose) and, when asked for, its visible facial
 * actions; `toV1` gives subscribers that ask for v1 (`/events?v=1`) the old shape.
 */

export interface Box {
  x: number;
  y: number;
  w: number;
  h: number;
}

interface Base {
  v: 2;
  /** Set by the event hub: contiguous per room (a subscriber resumes from it). */
  seq?: number;
  stream: string;
  room?: string;
  /** Media time in ms since the stream started. */
  ts: number;
  /** ISO 8601 wall-clock time of publication. */
  wallTime: string;
}

export interface EmotionEvent extends Base {
  type: 'emotion';
  track: string;
  window: { frames: number; spanMs: number };
  /** A model label, or 'uncertain' when no shown label reaches analysis.minConfidence (see pipeline/labeller.ts). */
  label: string;
  /** Calibrated probability of the best shown label. */
  confidence: number;
  /** Calibrated probability per shown label (hidden labels, e.g. contempt, are left out). */
  scores: Record<string, number>;
  box: Box;
  model: { name: string; version: string };
  /** From the newest frame's arrival out of the decoder to publication. */
  latencyMs: number;
  /** How good a view of the face this was: its height in analysed pixels and the head's rotation. */
  quality: { faceSizePx: number; yaw: number | null; pitch: number | null; roll: number | null; detection: number | null };
  /**
   * Visible facial actions (MediaPipe blendshape coefficients, 0..1), kept apart from the
   * inferred label: what the face does, not what it is taken to mean. Only when asked for.
   */
  actions?: Record<string, number>;
}

export interface FaceEnterEvent extends Base {
  type: 'face_enter';
  track: string;
  box: Box;
}

export interface FaceLeaveEvent extends Base {
  type: 'face_leave';
  track: string;
  reason: 'lost' | 'stream_end';
}

export interface StreamStartEvent extends Base {
  type: 'stream_start';
  source: { kind: string; uri: string; width: number; height: number; fps: number };
  model: { name: string; version: string; labels: string[]; window: number };
}

export interface StreamStats {
  decoded: number;
  analysed: number;
  sampledOut: number;
  dropped: number;
  decodeErrors: number;
  framesWithoutFace: number;
  emotions: number;
}

export interface StreamEndEvent extends Base {
  type: 'stream_end';
  /** failover: its analyser was lost (scale-out); another continues the stream with a new stream_start. */
  reason: 'eof' | 'stopped' | 'error' | 'failover';
  stats: StreamStats;
}

export interface ErrorEvent extends Base {
  type: 'error';
  code: string;
  message: string;
  fatal: boolean;
}

/** From the hub, not the pipeline: events `from`..`to` of `room` will not arrive (dropped for a slow
 *  client, or no longer held when it resumed). */
export interface GapEvent {
  v: 1 | 2;
  type: 'gap';
  room: string;
  from: number;
  to: number;
  reason: 'dropped' | 'expired';
  wallTime: string;
}

export type PipelineEvent = EmotionEvent | FaceEnterEvent | FaceLeaveEvent | StreamStartEvent | StreamEndEvent | ErrorEvent;

export const wallTime = (): string => new Date().toISOString();

/** Everything a subscriber of /events receives. */
export type HubEvent = PipelineEvent | GapEvent;

/** The same event in schema v1: no quality or actions, v = 1. */
export function toV1(e: HubEvent): Record<string, unknown> {
  const out: Record<string, unknown> = { ...e, v: 1 };
  if (e.type === 'emotion') {
    delete out['quality'];
    delete out['actions'];
  }
  // v1 knew no failover: to its readers the stream stopped (and starts again)
  if (e.type === 'stream_end' && e.reason === 'failover') out['reason'] = 'stopped';
  return out;
}
