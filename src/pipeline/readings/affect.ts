import type { Affect } from '../../publish/events.js';

/**
 * Valence and arousal from the calibrated label probabilities: the probability-weighted
 * mean of each shown label's place on Russell's circumplex of affect (1980), neutral at
 * the centre. Each label sits on the unit circle at the angle Russell's scaling gave the
 * nearest of his 28 affect words (happy 7.8°, astonished 69.8°, angry 99.8°, afraid
 * 116.9°, sad 207.5°); disgust and contempt are not among those words and are placed by
 * us, between annoyed (123.0°) and distressed (137.6°), and at 160°.
 *
 * It says where the *shown expression* lies, not what the person feels; it can only
 * move inside the polygon of those points, it cannot tell a laugh from a smile (both
 * are "happiness"), and it inherits every mistake of the label probabilities. Computed
 * from the smoothed probabilities, so it moves as smoothly as the label does.
 */
const DEG: Readonly<Record<string, number>> = {
  happiness: 7.8,
  surprise: 69.8,
  anger: 99.8,
  fear: 116.9,
  disgust: 130,
  contempt: 160,
  sadness: 207.5,
};

/** Each label's circumplex point, neutral (and any label without a place) at the centre. */
export function circumplex(labels: readonly string[]): Array<[number, number]> {
  return labels.map((l) => {
    const d = DEG[l];
    if (d === undefined) return [0, 0];
    const r = (d * Math.PI) / 180;
    return [Math.cos(r), Math.sin(r)];
  });
}

/** The weighted mean over the shown labels (hidden ones are not suggested here either), in [-1, 1]. */
export function affectOf(probs: ArrayLike<number>, points: ReadonlyArray<readonly [number, number]>, shown: readonly boolean[]): Affect {
  let v = 0;
  let a = 0;
  let sum = 0;
  for (let k = 0; k < points.length; k++) {
    if (!shown[k]) continue;
    const p = probs[k]!;
    v += p * points[k]![0];
    a += p * points[k]![1];
    sum += p;
  }
  return sum > 0 ? { valence: v / sum, arousal: a / sum } : { valence: 0, arousal: 0 };
}
