/**
 * Turns one track's stream of window probabilities into the label a person sees.
 *
 * The model's probabilities are calibrated (a temperature fitted on held-out faces is
 * part of the head), so a threshold on them means what it says. Three rules keep the
 * label defensible and steady:
 * - hidden labels (by default contempt: 18 training sequences, and on real calls it
 *   won on mild closed-mouth smiles) never become the label; their probability stays
 *   with them, so a face the model reads as contempt is shown as `uncertain`, not as
 *   the runner-up;
 * - below `minConfidence` the label is `uncertain`;
 * - hysteresis: the shown label stays while it is within `margin` of the best one and
 *   above `minConfidence - margin`; a new label (or `uncertain`) replaces it only after
 *   it has been wanted for `hold` consecutive windows, so a noisy window, or a face
 *   hovering between two readings, does not flip the overlay;
 * - the onset as reference (`onset`): a track's first windows are its face before it
 *   moves, and each class counts by how far it has come since then
 *   (p_k / ref_k^strength, renormalised): an expression the onset did not show stands
 *   out sooner, a reading that was there from the start counts for less. A face that
 *   holds its onset's reading is weighed as p^(1 - strength), in p's own order, so with
 *   strength below 1 an expression shown from the start still shows. Which label leads
 *   (and by how much, for the margin) comes from these weighed readings; the threshold,
 *   the confidence and the probabilities the reading carries (the event's scores) stay
 *   the model's calibrated ones.
 */
export const UNCERTAIN = 'uncertain';

export interface LabelPolicy {
  /** Labels that may be shown; the others are never the label. */
  shown: readonly boolean[];
  minConfidence: number;
  /** Consecutive windows a new label must lead before it is shown (1 = at once). */
  hold: number;
  /** How far (in probability) the shown label may fall behind before it is challenged. */
  margin: number;
  /** Weight of the newest window in the moving average of probabilities (1 = none). */
  smoothing: number;
  /** The onset as reference; absent or strength 0: none. */
  onset?: OnsetReference | undefined;
}

export interface OnsetReference {
  /** The track's first windows, averaged, are its reference. */
  windows: number;
  /** 0: no reference; 1: each class divided by its share at the onset. */
  strength: number;
}

export interface Reading {
  /** What is shown: a model label or `uncertain`. */
  label: string;
  /** Calibrated probability of the best shown label (also when the reading is uncertain); with the onset reference, best as weighed against the onset. */
  confidence: number;
  /** The best shown label of this window alone, before the threshold and the hysteresis. */
  top: string;
  probs: Float32Array;
}

export class Labeller {
  private smoothed: Float32Array | null = null;
  private weighed: Float32Array | null = null;
  private readonly ref: Float64Array;
  private refWindows = 0;
  // this window weighed, before smoothing: one buffer per track, not one per window
  private readonly scratch: Float32Array;
  private current: string | null = null;
  private candidate: string | null = null;
  private streak = 0;

  constructor(
    private readonly labels: readonly string[],
    private readonly policy: LabelPolicy,
  ) {
    if (policy.shown.length !== labels.length) throw new Error('label policy: one shown flag per label is needed');
    if (!policy.shown.some(Boolean)) throw new Error('label policy: every label is hidden');
    const o = policy.onset;
    if (o && (!(o.windows >= 1) || !(o.strength >= 0 && o.strength <= 1)))
      throw new Error('label policy: onset needs windows >= 1 and a strength in 0..1');
    this.ref = new Float64Array(labels.length);
    this.scratch = new Float32Array(labels.length);
  }

  /** Takes the onset reference again from the next windows (the page's "calibrate": this face at rest, now); the shown label stays. */
  restartOnset(): void {
    this.weighed = null;
    this.ref.fill(0);
    this.refWindows = 0;
  }

  reset(): void {
    this.smoothed = null;
    this.restartOnset();
    this.current = null;
    this.candidate = null;
    this.streak = 0;
  }

  update(p: Float32Array): Reading {
    this.smoothed = smooth(this.smoothed, p, this.policy.smoothing);
    const o = this.policy.onset;
    const c = this.smoothed;
    // the order of the labels (best, margin) from the weighed readings; thresholds on the calibrated ones
    const q = o && o.strength > 0 ? (this.weighed = smooth(this.weighed, this.weigh(p, o), this.policy.smoothing)) : c;
    const best = bestShown(q, this.policy.shown);
    const top = this.labels[best]!;
    const confidence = c[best]!;
    const wanted = confidence >= this.policy.minConfidence ? top : UNCERTAIN;
    const k = this.current === null ? -1 : this.labels.indexOf(this.current);
    const m = this.policy.margin;
    const holds = k >= 0 && c[k]! >= this.policy.minConfidence - m && q[k]! + m > q[best]!;
    if (this.current === null) {
      this.current = wanted;
    } else if (wanted === this.current || holds) {
      this.candidate = null;
      this.streak = 0;
    } else {
      this.streak = wanted === this.candidate ? this.streak + 1 : 1;
      this.candidate = wanted;
      if (this.streak >= this.policy.hold) {
        this.current = wanted;
        this.candidate = null;
        this.streak = 0;
      }
    }
    return { label: this.current, confidence, top, probs: this.smoothed };
  }

  /** This window against the track's onset (the mean of its first `windows` windows, this one included while they last). */
  private weigh(p: Float32Array, o: OnsetReference): Float32Array {
    if (this.refWindows < o.windows) {
      for (let k = 0; k < p.length; k++) this.ref[k]! += p[k]!;
      this.refWindows++;
    }
    const out = this.scratch;
    let z = 0;
    for (let k = 0; k < p.length; k++) {
      // floors: a class the onset never showed is lifted at most 1000^strength-fold
      out[k] = Math.max(p[k]!, 1e-6) * Math.max(this.ref[k]! / this.refWindows, 1e-3) ** -o.strength;
      z += out[k]!;
    }
    for (let k = 0; k < p.length; k++) out[k]! /= z;
    return out;
  }
}

/** The moving average, in place after the first window. */
function smooth(into: Float32Array | null, p: Float32Array, s: number): Float32Array {
  if (!into) return Float32Array.from(p);
  for (let k = 0; k < p.length; k++) into[k] = s * p[k]! + (1 - s) * into[k]!;
  return into;
}

/** Index of the most probable label that may be shown. */
export function bestShown(p: ArrayLike<number>, shown: readonly boolean[]): number {
  let best = -1;
  for (let k = 0; k < p.length; k++) if (shown[k] && (best < 0 || p[k]! > p[best]!)) best = k;
  return best;
}

const EMOTIONS = ['anger', 'disgust', 'fear', 'happiness', 'sadness', 'surprise', 'neutral', 'contempt'];

/** The shown-flag per label. A hidden name that is no emotion at all is a typo and refused;
 *  one the loaded model simply lacks (a model without contempt) hides nothing. */
export function shownLabels(labels: readonly string[], hidden: readonly string[]): boolean[] {
  const unknown = hidden.filter((h) => !EMOTIONS.includes(h));
  if (unknown.length) throw new Error(`analysis.hiddenLabels: unknown label ${unknown.join(', ')} (labels: ${EMOTIONS.join(', ')})`);
  return labels.map((l) => !hidden.includes(l));
}
