import {
  wallTime,
  type Affect,
  type Attention,
  type Baseline,
  type Box,
  type FaceSummaryEvent,
  type RoomSummaryEvent,
  type Summary,
  type EmotionEvent,
  type ErrorEvent,
  type FaceEnterEvent,
  type FaceLeaveEvent,
  type GapEvent,
  type StreamEndEvent,
  type StreamStartEvent,
  type StreamStats,
} from './events.js';

/**
 * Every event is made here, so its wire shape (what is rounded, what is left out, what
 * a v2 field is called) has one author: a stream's stages and edges, the gateway's gaps
 * and the SFU's failover notices all call these.
 */

/** What every stream event starts with. */
export interface Envelope {
  v: 3;
  stream: string;
  room?: string;
  ts: number;
  wallTime: string;
}

export const envelope = (stream: string, room: string | undefined, ts: number): Envelope => ({
  v: 3,
  stream,
  ...(room ? { room } : {}),
  ts: Math.max(0, ts),
  wallTime: wallTime(),
});

/** Probabilities and confidences go out at four decimals: more would claim a precision the model has not. */
const r4 = (v: number): number => Math.round(v * 1e4) / 1e4;

export const streamStart = (
  e: Envelope,
  source: StreamStartEvent['source'],
  model: { name: string; version: string; labels: readonly string[]; window: number },
): StreamStartEvent => ({
  ...e,
  type: 'stream_start',
  source,
  model: { name: model.name, version: model.version, labels: [...model.labels], window: model.window },
});

export const streamEnd = (e: Envelope, reason: StreamEndEvent['reason'], stats: StreamStats): StreamEndEvent => ({
  ...e,
  type: 'stream_end',
  reason,
  stats,
});

export const errorEvent = (e: Envelope, code: string, message: string, fatal: boolean): ErrorEvent => ({
  ...e,
  type: 'error',
  code,
  message,
  fatal,
});

export const faceEnter = (e: Envelope, track: string, box: Box): FaceEnterEvent => ({ ...e, type: 'face_enter', track, box });

export const faceLeave = (e: Envelope, track: string, reason: FaceLeaveEvent['reason']): FaceLeaveEvent => ({
  ...e,
  type: 'face_leave',
  track,
  reason,
});

export interface EmotionReading {
  track: string;
  window: EmotionEvent['window'];
  label: string;
  confidence: number;
  /** Probability per model label, in the model's order. */
  probs: ArrayLike<number>;
  labels: readonly string[];
  /** Which labels may be shown; hidden ones are not offered as scores either (what is not shown is not suggested). */
  shown: readonly boolean[];
  box: Box;
  model: { name: string; version: string };
  /** performance.now() when the newest frame left the decoder. */
  arrivedAt: number;
  /** The analysed frame's height, to say the face's size in pixels. */
  frameHeight: number;
  pose?: { yaw: number; pitch: number; roll: number } | undefined;
  detection?: number | undefined;
  actions?: Record<string, number> | undefined;
  affect: Affect;
  attention: Attention;
  baseline?: BaselineReading | null | undefined;
}

/** A face's personal baseline as the pipeline holds it: how far this reading is from the reference. */
export interface BaselineReading {
  state: Baseline['state'];
  valence: number;
  arousal: number;
  /** Probability per model label minus the reference's, in the model's order. */
  probs: ArrayLike<number>;
}

export function emotionEvent(e: Envelope, r: EmotionReading): EmotionEvent {
  const scores: Record<string, number> = {};
  r.labels.forEach((l, k) => {
    if (r.shown[k]) scores[l] = r4(r.probs[k]!);
  });
  return {
    ...e,
    type: 'emotion',
    track: r.track,
    window: r.window,
    label: r.label,
    confidence: r4(r.confidence),
    scores,
    box: r.box,
    model: { name: r.model.name, version: r.model.version },
    latencyMs: Math.round((performance.now() - r.arrivedAt) * 100) / 100,
    quality: {
      faceSizePx: Math.round(r.box.h * r.frameHeight),
      yaw: r.pose?.yaw ?? null,
      pitch: r.pose?.pitch ?? null,
      roll: r.pose?.roll ?? null,
      detection: r.detection ?? null,
    },
    ...(r.actions ? { actions: r.actions } : {}),
    valence: r4(r.affect.valence),
    arousal: r4(r.affect.arousal),
    attention: r.attention,
    ...(r.baseline ? { baseline: baselineOf(r.baseline, r.labels, r.shown) } : {}),
  };
}

function baselineOf(b: BaselineReading, labels: readonly string[], shown: readonly boolean[]): Baseline {
  const scores: Record<string, number> = {};
  labels.forEach((l, k) => {
    if (shown[k]) scores[l] = r4(b.probs[k]!);
  });
  return { state: b.state, valence: r4(b.valence), arousal: r4(b.arousal), scores };
}

/** A face's summary so far (readings/summary.ts keeps it). */
export const faceSummary = (e: Envelope, track: string, fromTs: number, final: boolean, sum: Summary): FaceSummaryEvent => ({
  ...e,
  type: 'summary',
  scope: 'face',
  track,
  fromTs,
  final,
  ...roundSummary(sum),
});

export const roomSummary = (room: string, faces: number, streams: number, sum: Summary): RoomSummaryEvent => ({
  v: 3,
  type: 'summary',
  scope: 'room',
  room,
  faces,
  streams,
  final: true,
  wallTime: wallTime(),
  ...roundSummary(sum),
});

/** Whole milliseconds, and label times rounded so that they still add up to analysedMs. */
function roundSummary(s: Summary): Summary {
  const labelMs: Record<string, number> = {};
  let acc = 0;
  let done = 0;
  for (const [l, ms] of Object.entries(s.labelMs)) {
    acc += ms;
    labelMs[l] = Math.round(acc) - done;
    done += labelMs[l];
  }
  const n = (v: number | null): number | null => (v === null ? null : r4(v));
  return { analysedMs: done, labelMs, readings: s.readings, valence: n(s.valence), arousal: n(s.arousal), attentive: n(s.attentive) };
}

/** Events `from`..`to` of the room that a subscriber will not get, and why. */
export const gapEvent = (room: string, from: number, to: number, reason: GapEvent['reason']): GapEvent => ({
  v: 3,
  type: 'gap',
  room,
  from,
  to,
  reason,
  wallTime: wallTime(),
});

export const NO_STATS: Readonly<StreamStats> = {
  decoded: 0,
  analysed: 0,
  sampledOut: 0,
  dropped: 0,
  decodeErrors: 0,
  framesWithoutFace: 0,
  emotions: 0,
  facesTooSmall: 0,
  facesOverLimit: 0,
  actionsFused: 0,
  actionsUnusable: 0,
};

/** The stream goes on elsewhere: readers see it end here and start again with a new stream_start. */
export const failoverEnd = (room: string, stream: string): StreamEndEvent => ({
  ...envelope(stream, room, 0),
  type: 'stream_end',
  room,
  reason: 'failover',
  stats: { ...NO_STATS },
});
