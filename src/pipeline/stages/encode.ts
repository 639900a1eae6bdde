import { concatMap, type OperatorFunction } from 'rxjs';
import type { StreamState } from '../stream-state.js';
import type { Encoded, Tracked } from './work.js';

const NONE = { app: new Float32Array(0), rel: new Float32Array(0) };

/** Each face's embedding averaged with its mirror's, which follows it: [2n * d] -> [n * d]. */
function pairMeans(v: Float32Array, n: number): Float32Array {
  const d = v.length / (2 * n);
  const out = new Float32Array(n * d);
  for (let f = 0; f < n; f++) for (let k = 0; k < d; k++) out[f * d + k] = (v[2 * f * d + k]! + v[(2 * f + 1) * d + k]!) / 2;
  return out;
}

/** The encoder once per face per frame (batched with other streams' faces where configured). */
export function encode(s: StreamState): OperatorFunction<Tracked, Encoded> {
  const run = s.o.encode ?? ((faces: Float32Array, n: number) => s.o.model.encode(faces, n));
  return concatMap(async (w) => {
    if (!w.seen.length) return { ...w, emb: NONE };
    const t = performance.now();
    const n = w.seen.length;
    const raw = await run(s.faceBatch, n * s.views);
    const emb = s.views === 2 ? { app: pairMeans(raw.app, n), rel: pairMeans(raw.rel, n) } : raw;
    s.time('encoder', t);
    s.times.faceFrames += w.seen.length;
    return { ...w, emb };
  });
}
