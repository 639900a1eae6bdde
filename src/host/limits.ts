import type { Config } from '../config.js';
import { CLOSE } from '../publish/close-codes.js';

export type LimitSettings = Config['limits'];

/** What each refusal was for; each is counted and exported on /metrics. */
export type LimitName = 'rate' | 'message_size' | 'peers_per_room' | 'producers_per_room' | 'rooms' | 'connections';

/**
 * A token bucket: `rate` requests a second on average, `burst` at once. A page's join
 * sends a dozen requests in a blink, so the burst, not the rate, is what a page meets.
 */
export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    private readonly rate: number,
    private readonly burst: number,
    now = performance.now(),
  ) {
    this.tokens = burst;
    this.last = now;
  }

  take(now = performance.now()): boolean {
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.rate);
    this.last = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}

/** The server's limits and the refusals they caused, shared by /signaling and /events. */
export class Limits {
  readonly refusals: Record<LimitName, number> = {
    rate: 0,
    message_size: 0,
    peers_per_room: 0,
    producers_per_room: 0,
    rooms: 0,
    connections: 0,
  };
  private open = 0;

  constructor(readonly s: LimitSettings) {}

  refuse(name: LimitName): void {
    this.refusals[name]++;
  }

  /**
   * A new WebSocket (any endpoint) is counted until it closes, or refused with 1013 and
   * counted as a refusal when the server holds its limit; false = refused.
   */
  admit(ws: { close(code: number, reason: string): void; once(event: 'close', f: () => void): unknown }): boolean {
    if (this.open >= this.s.connections) {
      this.refuse('connections');
      ws.close(CLOSE.tryAgainLater, 'the server is at its connection limit; try again later');
      return false;
    }
    this.open++;
    ws.once('close', () => void (this.open = Math.max(0, this.open - 1)));
    return true;
  }

  get connections(): number {
    return this.open;
  }

  bucket(): TokenBucket {
    return new TokenBucket(this.s.requestsPerSecond, this.s.requestBurst);
  }
}
