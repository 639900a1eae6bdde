import { filter, type MonoTypeOperatorFunction } from 'rxjs';
import type { Frame } from '../../ingest/frame.js';
import { RateSampler } from '../sampler.js';

/** Keeps frames at the analysis rate by media time; `skipped` hears of each frame left out. */
export function sample(fps: number, skipped: (f: Frame) => void): MonoTypeOperatorFunction<Frame> {
  const sampler = new RateSampler(fps);
  return filter((f) => {
    if (sampler.keep(f.ts)) return true;
    skipped(f);
    return false;
  });
}
