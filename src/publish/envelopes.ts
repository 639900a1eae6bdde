import { wallTime, type GapEvent, type StreamEndEvent, type StreamStats } from './events.js';

/**
 * The envelopes made outside a stream's pipeline, in one place: the gap an /events
 * endpoint sends for what a subscriber will not get, and the stream_end said for a
 * stream whose analyser was lost. (A stream's own events are made by its stages.)
 */
export const gapEvent = (room: string, from: number, to: number, reason: GapEvent['reason']): GapEvent => ({
  v: 2,
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
};

/** The stream goes on elsewhere: readers see it end here and start again with a new stream_start. */
export const failoverEnd = (room: string, stream: string): StreamEndEvent => ({
  v: 2,
  type: 'stream_end',
  stream,
  room,
  ts: 0,
  wallTime: wallTime(),
  reason: 'failover',
  stats: { ...NO_STATS },
});
