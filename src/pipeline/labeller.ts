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
 *   hovering between two readings, does not flip the overlay.
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
}

export interface Reading {
  /** What is shown: a model label or `uncertain`. */
  label: string;
  /** Probability of the best shown label (also when the reading is uncertain). */
  confidence: number;
  /** The best shown label of this window alone, before the threshold and the hysteresis. */
  top: string;
  probs: Float32Array;
}

export class Labeller {
  private smoothed: Float32Array | null = null;
  private current: string | null = null;
  private candidate: string | null = null;
  private streak = 0;

  constructor(
    private readonly labels: readonly string[],
    private readonly policy: LabelPolicy,
  ) {
    if (policy.shown.length !== labels.length) throw new Error('label policy: one shown flag per label is needed');
    if (!policy.shown.some(Boolean)) throw new Error('label policy: every label is hidden');
  }

  reset(): void {
    this.smoothed = null;
    this.current = null;
    this.candidate = null;
    this.streak = 0;
  }

  update(p: Float32Array): Reading {
    const s = this.policy.smoothing;
    if (!this.smoothed) this.smoothed = Float32Array.from(p);
    else for (let k = 0; k < p.length; k++) this.smoothed[k] = s * p[k]! + (1 - s) * this.smoothed[k]!;
    const q = this.smoothed;
    const best = bestShown(q, this.policy.shown);
    const top = this.labels[best]!;
    const confidence = q[best]!;
    const wanted = confidence >= this.policy.minConfidence ? top : UNCERTAIN;
    const k = this.current === null ? -1 : this.labels.indexOf(this.current);
    const m = this.policy.margin;
    const holds = k >= 0 && q[k]! >= this.policy.minConfidence - m && q[k]! + m > confidence;
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
    return { label: this.current, confidence, top, probs: q };
  }
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
