import type { BaselineReading } from '../../publish/envelopes.js';
import type { Affect } from '../../publish/events.js';

/**
 * A face's own neutral reference, opt-in: the mean of its readings over its first
 * seconds (or the seconds after a calibrate request); later readings are reported as
 * their difference from it, so a resting face that the model reads as a little sad
 * reads as 0 for its owner. Held with the track, in memory only: it goes when the
 * face leaves and is never sent anywhere but as those differences.
 */
export class FaceBaseline {
  private fromTs: number | null = null;
  private readonly sum: Float64Array;
  private n = 0;
  private sumV = 0;
  private sumA = 0;
  private ref: { probs: Float64Array; valence: number; arousal: number } | null = null;
  private readonly diff: Float32Array;

  constructor(
    classes: number,
    private readonly ms: number,
  ) {
    this.sum = new Float64Array(classes);
    this.diff = new Float32Array(classes);
  }

  /** Takes the reference again from the next reading on (the page's "calibrate"). */
  restart(): void {
    this.fromTs = null;
    this.ref = null;
    this.n = 0;
    this.sum.fill(0);
    this.sumV = 0;
    this.sumA = 0;
  }

  update(ts: number, probs: ArrayLike<number>, affect: Affect): BaselineReading {
    if (!this.ref) {
      this.fromTs ??= ts;
      for (let k = 0; k < this.sum.length; k++) this.sum[k]! += probs[k]!;
      this.sumV += affect.valence;
      this.sumA += affect.arousal;
      this.n++;
      if (ts - this.fromTs >= this.ms)
        this.ref = { probs: this.sum.map((v) => v / this.n), valence: this.sumV / this.n, arousal: this.sumA / this.n };
    }
    const ref = this.ref ?? { probs: this.sum.map((v) => v / this.n), valence: this.sumV / this.n, arousal: this.sumA / this.n };
    for (let k = 0; k < this.diff.length; k++) this.diff[k] = probs[k]! - ref.probs[k]!;
    return {
      state: this.ref ? 'set' : 'collecting',
      valence: affect.valence - ref.valence,
      arousal: affect.arousal - ref.arousal,
      probs: this.diff,
    };
  }
}
