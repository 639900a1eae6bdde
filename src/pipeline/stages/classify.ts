import { concatMap, type OperatorFunction } from 'rxjs';
import type { StreamState } from '../stream-state.js';
import type { Classified, Windowed } from './work.js';

const NONE = new Float32Array(0);

/** ARPGNet's fusion head on every due window of the frame, in one batch (on the stream's face worker where it has one). */
export function classify(s: StreamState): OperatorFunction<Windowed, Classified> {
  const run = s.o.classify ?? ((app, rel, valid, n) => s.o.model.classify(app, rel, valid, n));
  return concatMap(async (w) => {
    if (!w.due.length) return { ...w, probs: NONE };
    const t = performance.now();
    w.due.forEach(({ state }, slot) => state.window.writeTo(s.headApp, s.headRel, s.headValid, slot));
    const probs = await run(s.headApp, s.headRel, s.headValid, w.due.length);
    s.time('head', t);
    s.times.windows += w.due.length;
    return { ...w, probs };
  });
}
