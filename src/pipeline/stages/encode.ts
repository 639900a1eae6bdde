import { concatMap, type OperatorFunction } from 'rxjs';
import { mirrorMeans } from '../../model/arpgnet.js';
import type { StreamState } from '../stream-state.js';
import type { Encoded, Tracked } from './work.js';

const NONE = { app: new Float32Array(0), rel: new Float32Array(0) };

/** The encoder once per face per frame (batched with other streams' faces where configured). */
export function encode(s: StreamState): OperatorFunction<Tracked, Encoded> {
  const run = s.o.encode ?? ((faces: Float32Array, n: number) => s.o.model.encode(faces, n));
  return concatMap(async (w) => {
    if (!w.seen.length) return { ...w, emb: NONE };
    const t = performance.now();
    const n = w.seen.length;
    const raw = await run(s.faceBatch, n * s.views);
    const emb = s.views === 2 ? mirrorMeans(raw, n) : raw;
    s.time('encoder', t);
    s.times.faceFrames += w.seen.length;
    return { ...w, emb };
  });
}
