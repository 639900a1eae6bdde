import { z } from 'zod';

/** What an analyser announces every heartbeat: who it is, where, and how much room it has. */
export const AnalyserBeat = z.object({
  id: z.string(),
  pid: z.number().int(),
  /** Where the SFU sends RTP for this analyser. */
  address: z.string(),
  capacity: z.number().int().min(0),
  streams: z.array(z.string()),
  /** /healthz of this analyser. */
  health: z.string(),
});
export type AnalyserBeat = z.infer<typeof AnalyserBeat>;

export const SfuBeat = z.object({ id: z.string(), pid: z.number().int() });
export type SfuBeat = z.infer<typeof SfuBeat>;

/**
 * A participant's own analysis settings, asked for in its join (a kiosk: the face nearest
 * the centre): which faces count, and a personal baseline from each face's first seconds.
 */
export const StreamAnalysis = z
  .object({
    pick: z.enum(['largest', 'centre']).optional(),
    minHeightPx: z.number().int().min(0).max(4096).optional(),
    baseline: z.boolean().optional(),
  })
  .strict();
export type StreamAnalysis = z.infer<typeof StreamAnalysis>;

/** SFU -> analyser: analyse this stream; the RTP will come from the SFU to the port you answer. */
export const AnalyserRequest = z.discriminatedUnion('op', [
  z.object({
    op: z.literal('start'),
    sfu: z.string(),
    room: z.string(),
    stream: z.string(),
    name: z.string(),
    width: z.number().int().positive(),
    height: z.number().int().positive(),
    /** The consumer's codec as mediasoup negotiated it (payload type, clock rate, parameters). */
    codec: z.object({
      mimeType: z.string(),
      payloadType: z.number().int(),
      clockRate: z.number().int(),
      parameters: z.record(z.string(), z.union([z.string(), z.number()])).optional(),
    }),
    analysis: StreamAnalysis.optional(),
  }),
  z.object({ op: z.literal('stop'), stream: z.string() }),
  /** Take a new personal baseline for the stream's faces (or one of them) from their next readings. */
  z.object({ op: z.literal('calibrate'), stream: z.string(), track: z.string().max(64).optional() }),
]);
export type AnalyserRequest = z.infer<typeof AnalyserRequest>;

export const AnalyserReply = z.union([
  z.object({
    ok: z.literal(true),
    ip: z.string(),
    port: z.number().int(),
    rtcpPort: z.number().int(),
    analyser: z.string(),
    pid: z.number().int(),
  }),
  z.object({ ok: z.literal(true), stopped: z.boolean() }),
  z.object({ ok: z.literal(true), calibrated: z.boolean() }),
  z.object({ ok: z.literal(false), error: z.string() }),
]);
export type AnalyserReply = z.infer<typeof AnalyserReply>;

/** Analyser -> SFU. */
export const SfuRequest = z.object({ op: z.literal('keyframe'), stream: z.string() });
export type SfuRequest = z.infer<typeof SfuRequest>;
