/** How often roles say they are alive, and how long silence means dead (the lease). */
export const BEAT_MS = 200;
export const LEASE_MS = 800;
/** An SFU silent this long is gone: an analyser ends its streams. */
export const SFU_LEASE_MS = 3000;
