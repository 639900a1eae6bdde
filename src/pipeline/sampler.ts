/**
 * Keeps frames at the analysis rate by media time: a frame is kept when it is at or past
 * the next due time. Frames are never duplicated; a source slower than the rate keeps all.
 */
export class RateSampler {
  private nextDue = -Infinity;
  private readonly interval: number;

  constructor(fps: number) {
    this.interval = fps > 0 ? 1000 / fps : 0;
  }

  keep(ts: number): boolean {
    // half a millisecond of slack absorbs rounding in i * 1000 / fps timestamps
    if (ts + 0.5 < this.nextDue) return false;
    // on schedule: the next slot; after a gap (or at the start): one interval from now
    this.nextDue = ts - this.nextDue > this.interval ? ts + this.interval : this.nextDue + this.interval;
    return true;
  }
}
