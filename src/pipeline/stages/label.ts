import { map, type OperatorFunction } from 'rxjs';
import type { StreamState, TrackState } from '../stream-state.js';
import type { Classified, Labelled } from './work.js';

/**
 * Probabilities to the label a person sees (smoothing, hidden labels, `uncertain`,
 * hysteresis: labeller.ts), and which readings become events: every window, or (emit
 * 'change') a changed label and at least one per heartbeat.
 */
export function label(s: StreamState): OperatorFunction<Classified, Labelled> {
  const c = s.o.model.labels.length;
  const emit = s.o.emit;
  const wanted = (st: TrackState, label: string, ts: number): boolean => {
    if (emit?.mode !== 'change') return true;
    if (label === st.lastLabel && ts - st.lastEmitTs < emit.heartbeatMs) return false;
    st.lastLabel = label;
    st.lastEmitTs = ts;
    return true;
  };
  return map((w) => ({
    ...w,
    readings: w.due
      .map((due, slot) => ({ due, reading: due.state.labeller.update(w.probs.subarray(slot * c, (slot + 1) * c)) }))
      .filter(({ due, reading }) => wanted(due.state, reading.label, w.frame.ts)),
  }));
}
