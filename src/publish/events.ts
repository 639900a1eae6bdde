/**
 * Events, schema v3 (src/publish/events.v3.schema.json is the published contract).
 * v2 added to v1 a face's quality (size, head pose) and, when asked for, its visible
 * facial actions; v3 adds valence, arousal and attention to emotion events, an opt-in
 * personal baseline, and summary events. Each version only adds: `toV2` and `toV1` give
 * subscribers that ask for an older one (`/events?v=2`, `?v=1`) its shape.
 */

export interface Box {
  x: number;
  y: number;
  w: number;
  h: number;
}

export type SchemaVersion = 1 | 2 | 3;

interface Base {
  v: 3;
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
  /** Calibrated probability of the best shown label (best as read against the track's onset: pipeline/labeller.ts). */
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
  /** Where the shown expression lies on the circumplex, in [-1, 1] (readings/affect.ts: what it can and cannot mean). */
  valence: number;
  arousal: number;
  attention: Attention;
  /** Only for a face with a personal baseline: this reading minus the face's own neutral reference. */
  baseline?: Baseline;
}

export interface Affect {
  valence: number;
  arousal: number;
}

/** Facing the screen or not, from head pose (not gaze): a face turned to the screen with its eyes elsewhere still counts. */
export interface Attention {
  /** null when the head pose is unknown. */
  looking: boolean | null;
  yaw: number | null;
  pitch: number | null;
  /** Where the pose came from: the landmarker's mesh, or the five points (coarser: bench:pose). */
  from: 'mesh' | 'points' | null;
}

export interface Baseline {
  /** collecting: the reference is being taken (its first seconds, or since a calibrate request). */
  state: 'collecting' | 'set';
  valence: number;
  arousal: number;
  /** Per shown label, this reading's probability minus the reference's. */
  scores: Record<string, number>;
}

/** Time per shown label and the means of one face (scope face) or of every face of a room (scope room). */
export interface Summary {
  /** Media time with readings, in ms; labelMs adds up to it. */
  analysedMs: number;
  labelMs: Record<string, number>;
  /** Readings (windows through the head) it is made of. */
  readings: number;
  valence: number | null;
  arousal: number | null;
  /** Share of analysedMs facing the screen, of the time with a head pose; null without one. */
  attentive: number | null;
}

export interface FaceSummaryEvent extends Base, Summary {
  type: 'summary';
  scope: 'face';
  track: string;
  /** Media time of the face's first reading. */
  fromTs: number;
  /** The face has left (or the stream ended): this is its last summary. */
  final: boolean;
}

export interface RoomSummaryEvent extends Summary {
  v: 3;
  seq?: number;
  type: 'summary';
  scope: 'room';
  room: string;
  /** Faces (tracks) summed, and the streams they came from. */
  faces: number;
  streams: number;
  final: true;
  wallTime: string;
}

export type SummaryEvent = FaceSummaryEvent | RoomSummaryEvent;

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
  /** Faces found but left out (analysis.faces): below the minimum height, or past maxFaces. */
  facesTooSmall: number;
  facesOverLimit: number;
  /** Windows read with the facial-actions branch, and faces whose blendshapes it could not use (read without). */
  actionsFused: number;
  actionsUnusable: number;
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
  v: SchemaVersion;
  type: 'gap';
  room: string;
  from: number;
  to: number;
  reason: 'dropped' | 'expired';
  wallTime: string;
}

export type PipelineEvent =
  EmotionEvent | FaceEnterEvent | FaceLeaveEvent | StreamStartEvent | StreamEndEvent | ErrorEvent | FaceSummaryEvent;

export const wallTime = (): string => new Date().toISOString();

/** What a room's event log holds: its streams' events and its own summary. */
export type LoggedEvent = PipelineEvent | RoomSummaryEvent;

/** Everything a subscriber of /events receives. */
export type HubEvent = LoggedEvent | GapEvent;

/** The same event in schema v2 (no valence, arousal, attention or baseline), or null: v2 knew no summaries. */
export function toV2(e: HubEvent): Record<string, unknown> | null {
  if (e.type === 'summary') return null;
  const out: Record<string, unknown> = { ...e, v: 2 };
  if (e.type === 'emotion') for (const k of ['valence', 'arousal', 'attention', 'baseline']) delete out[k];
  return out;
}

/** The same event in schema v1 (v2's, less quality and actions), or null. */
export function toV1(e: HubEvent): Record<string, unknown> | null {
  const out = toV2(e);
  if (!out) return null;
  out['v'] = 1;
  if (e.type === 'emotion') {
    delete out['quality'];
    delete out['actions'];
  }
  // v1 knew no failover: to its readers the stream stopped (and starts again)
  if (e.type === 'stream_end' && e.reason === 'failover') out['reason'] = 'stopped';
  return out;
}

/** An event in the shape of the schema a subscriber asked for; null when that version has no such event. */
export const inSchema = (e: HubEvent, v: SchemaVersion): Record<string, unknown> | HubEvent | null =>
  v === 3 ? e : v === 2 ? toV2(e) : toV1(e);
