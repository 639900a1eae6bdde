import { concatMap, type OperatorFunction } from 'rxjs';
import { fuseRow } from '../../model/actions.js';
import type { StreamState } from '../stream-state.js';
import type { Classified } from './work.js';

/**
 * The facial-actions branch joins the head's reading (model/actions.ts): each due window
 * whose face came with blendshapes this frame gets their terms; the others keep the head's
 * probabilities as they are. Both are counted (StreamState.actionsFusion), and so is a
 * face whose blendshapes could not be used, never filled in.
 */
export function fuse(s: StreamState): OperatorFunction<Classified, Classified> {
  const f = s.o.actions;
  if (!f) return (w$) => w$;
  const d = f.model.names.length;
  const vectors = new Float32Array(s.o.maxFaces * d);
  const c = s.o.model.labels.length;
  return concatMap(async (w) => {
    if (!w.due.length) return w;
    const rows: number[] = [];
    w.due.forEach(({ track }, slot) => {
      const a = track.face.actions;
      if (!a) {
        s.actionsFusion.without++;
        return;
      }
      const why = f.model.vector(a, vectors, rows.length * d);
      if (why) {
        s.actionsFusion.unusable++;
        s.actionsFusion.lastProblem = `frame at ${w.frame.ts} ms, ${track.id}: ${why}`;
        return;
      }
      rows.push(slot);
    });
    if (!rows.length) return w;
    const terms = await f.model.terms(vectors, rows.length);
    // the head's output may be a view of a worker's buffer: the fused rows are this stream's own
    const probs = Float32Array.from(w.probs);
    rows.forEach((slot, r) =>
      fuseRow(probs.subarray(slot * c, (slot + 1) * c), f.idx, terms.subarray(r * f.idx.length, (r + 1) * f.idx.length)),
    );
    s.actionsFusion.fused += rows.length;
    return { ...w, probs };
  });
}
