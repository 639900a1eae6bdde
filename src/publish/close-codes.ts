/**
 * WebSocket close codes of /signaling and /events, shared by the server and
 * arpgnet-edge/client: a client tells a refusal it must not retry from a lost connection.
 */
export const CLOSE = {
  /** Closed on purpose by whoever closes it: nothing went wrong. */
  normal: 1000,
  /** The server is going away (shutdown): reconnect elsewhere or later. */
  goingAway: 1001,
  /** Something failed on our side while serving this socket. */
  internal: 1011,
  /** The server is at its connection limit: try again later. */
  tryAgainLater: 1013,
  /** The request itself is malformed (query, schema version, resume). */
  badRequest: 4400,
  /** No token, or one that is not ours (bad signature, malformed). */
  unauthenticated: 4401,
  expired: 4402,
  missingGrant: 4403,
  wrongRoom: 4404,
  /** The Origin header is not in auth.origins. */
  badOrigin: 4405,
} as const;
export type CloseReason = keyof typeof CLOSE;

/** Refusals that the same request would meet again: a client stops instead of retrying. */
export const FATAL_CLOSE: ReadonlySet<number> = new Set([
  CLOSE.badRequest,
  CLOSE.unauthenticated,
  CLOSE.missingGrant,
  CLOSE.wrongRoom,
  CLOSE.badOrigin,
]);
