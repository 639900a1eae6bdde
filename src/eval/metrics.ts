export interface EvalResult {
  accuracy: number;
  uar: number;
  war: number;
  n: number;
  noFace: number;
  labels: string[];
  recall: Record<string, number | null>;
  /** confusion[true][predicted]; samples with no face are counted under the true class as wrong, in no column. */
  confusion: number[][];
}

/** pred = -1 means no face was found: a wrong answer. */
export function summarise(truth: readonly number[], pred: readonly number[], labels: readonly string[]): EvalResult {
  const c = labels.length;
  const confusion = Array.from({ length: c }, () => new Array<number>(c).fill(0));
  const support = new Array<number>(c).fill(0);
  let correct = 0;
  let noFace = 0;
  truth.forEach((t, i) => {
    const p = pred[i]!;
    support[t]!++;
    if (p < 0) noFace++;
    else confusion[t]![p]!++;
    if (p === t) correct++;
  });
  const recall: Record<string, number | null> = {};
  const present: number[] = [];
  labels.forEach((l, k) => {
    recall[l] = support[k] ? confusion[k]![k]! / support[k]! : null;
    if (support[k]) present.push(recall[l]!);
  });
  const n = truth.length;
  const accuracy = n ? correct / n : 0;
  return {
    accuracy,
    uar: present.length ? present.reduce((a, b) => a + b, 0) / present.length : 0,
    war: accuracy,
    n,
    noFace,
    labels: [...labels],
    recall,
    confusion,
  };
}

export function formatResult(r: EvalResult): string {
  const pct = (v: number | null): string => (v === null ? '   -  ' : `${(v * 100).toFixed(1).padStart(5)}%`);
  const w = Math.max(...r.labels.map((l) => l.length), 9);
  const lines = [
    `samples ${r.n}   no face ${r.noFace}`,
    `accuracy ${pct(r.accuracy)}   UAR ${pct(r.uar)}   WAR ${pct(r.war)}`,
    '',
    `${'true \\ predicted'.padEnd(w)} ${r.labels.map((l) => l.slice(0, 5).padStart(6)).join('')}   recall`,
    ...r.labels.map((l, i) => `${l.padEnd(w)} ${r.confusion[i]!.map((v) => String(v).padStart(6)).join('')}   ${pct(r.recall[l] ?? null)}`),
  ];
  return lines.join('\n');
}

/** Expected calibration error: |accuracy - confidence| in 15 equal confidence bins, weighted by each bin's share. */
export function expectedCalibrationError(probs: readonly (readonly number[])[], truth: readonly number[], bins = 15): number {
  if (!probs.length) return 0;
  const sum = new Array<number>(bins).fill(0);
  const hits = new Array<number>(bins).fill(0);
  const count = new Array<number>(bins).fill(0);
  probs.forEach((p, i) => {
    let best = 0;
    for (let k = 1; k < p.length; k++) if (p[k]! > p[best]!) best = k;
    const conf = p[best]!;
    const b = Math.min(bins - 1, Math.max(0, Math.ceil(conf * bins) - 1));
    sum[b]! += conf;
    hits[b]! += best === truth[i] ? 1 : 0;
    count[b]!++;
  });
  let ece = 0;
  for (let b = 0; b < bins; b++) if (count[b]) ece += (count[b]! / probs.length) * Math.abs(hits[b]! / count[b]! - sum[b]! / count[b]!);
  return ece;
}
