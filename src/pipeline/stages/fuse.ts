import { concatMap, from, of, type OperatorFunction } from 'rxjs';
import { fuseReadings } from '../../model/actions.js';
import { errorEvent } from '../../publish/envelopes.js';
import type { StreamState } from '../stream-state.js';
import type { Classified } from './work.js';

/**
 * The facial-actions branch joins the head's reading (model/actions.ts): each due window
 * whose face came with blendshapes this frame gets their terms; the others keep the head's
 * probabilities as they are. All three outcomes are counted (StreamState.actionsFusion);
 * the first face whose blendshapes could not be used is named in a non-fatal error event,
 * the rest only counted, so a landmarker that stops giving a name does not flood subscribers.
 */
export function fuse(s: StreamState): OperatorFunction<Classified, Classified> {
  const f = s.o.actions;
  if (!f) return (w$) => w$;
  const scratch = new Float32Array(s.o.maxFaces * f.model.names.length);
  const c = s.o.model.labels.length;
  const fused = async (w: Classified, actions: Actions): Promise<Classified> => {
    // the head's output may be a view of a worker's buffer: the fused rows are this stream's own
    const probs = Float32Array.from(w.probs);
    const r = await fuseReadings(f, actions, probs, c, scratch);
    const n = s.actionsFusion;
    n.fused += r.fused;
    n.without += r.without;
    const first = n.unusable === 0 ? r.unusable[0] : undefined;
    n.unusable += r.unusable.length;
    if (!first) return r.fused ? { ...w, probs } : w;
    const message = `frame ${w.frame.index} (${w.frame.ts} ms), ${w.due[first.slot]!.track.id}: ${first.why}; read without blendshapes (later ones only counted)`;
    return { ...w, probs, events: [...w.events, errorEvent(s.base(w.frame.ts), 'actions_unusable', message, false)] };
  };
  return concatMap((w) => {
    // the default path (YuNet alone) computes no blendshapes: nothing to copy or run, and no
    // array or promise per frame
    if (!w.due.some(({ track }) => track.face.actions)) {
      s.actionsFusion.without += w.due.length;
      return of(w);
    }
    return from(
      fused(
        w,
        w.due.map(({ track }) => track.face.actions),
      ),
    );
  });
}

type Actions = ReadonlyArray<Readonly<Record<string, number>> | undefined>;
