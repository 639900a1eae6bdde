/**
 * The last T frame embeddings of one face, oldest first. The encoder fills it once
 * per frame; the head reads all T slots, with `valid` marking the slots not yet
 * filled (the oldest ones) so a young track can already be classified.
 */
export class EmbeddingWindow {
  private readonly app: Float32Array;
  private readonly rel: Float32Array;
  private readonly ts: Float64Array;
  private count = 0;
  private head = 0; // next slot to write
  private sinceEmit = 0;

  constructor(
    readonly t: number,
    private readonly appDim: number,
    private readonly relDim: number,
  ) {
    this.app = new Float32Array(t * appDim);
    this.rel = new Float32Array(t * relDim);
    this.ts = new Float64Array(t);
  }

  get frames(): number {
    return this.count;
  }

  get lastTs(): number {
    return this.count ? this.ts[(this.head + this.t - 1) % this.t]! : -Infinity;
  }

  get spanMs(): number {
    if (this.count < 2) return 0;
    const oldest = this.ts[(this.head + this.t - this.count) % this.t]!;
    return this.lastTs - oldest;
  }

  push(app: Float32Array, rel: Float32Array, ts: number): void {
    this.app.set(app, this.head * this.appDim);
    this.rel.set(rel, this.head * this.relDim);
    this.ts[this.head] = ts;
    this.head = (this.head + 1) % this.t;
    this.count = Math.min(this.t, this.count + 1);
    this.sinceEmit++;
  }

  reset(): void {
    this.count = 0;
    this.head = 0;
    this.sinceEmit = 0;
  }

  /** True when `stride` frames came in since the last emission and at least minFrames are present. */
  due(stride: number, minFrames: number): boolean {
    return this.count >= minFrames && this.sinceEmit >= stride;
  }

  /** Writes the window in time order into batch slot `slot` of the head's inputs. */
  writeTo(app: Float32Array, rel: Float32Array, valid: Float32Array, slot: number): void {
    const t = this.t;
    const empty = t - this.count;
    for (let k = 0; k < t; k++) {
      const on = k >= empty;
      valid[slot * t + k] = on ? 1 : 0;
      if (!on) {
        app.fill(0, (slot * t + k) * this.appDim, (slot * t + k + 1) * this.appDim);
        rel.fill(0, (slot * t + k) * this.relDim, (slot * t + k + 1) * this.relDim);
        continue;
      }
      const src = (this.head + k) % t; // oldest slot is at head when full
      app.set(this.app.subarray(src * this.appDim, (src + 1) * this.appDim), (slot * t + k) * this.appDim);
      rel.set(this.rel.subarray(src * this.relDim, (src + 1) * this.relDim), (slot * t + k) * this.relDim);
    }
    this.sinceEmit = 0;
  }
}
