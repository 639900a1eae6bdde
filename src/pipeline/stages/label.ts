import { map, type OperatorFunction } from 'rxjs';
import type { Attention } from '../../publish/events.js';
import { affectOf } from '../readings/affect.js';
import { attentionOf } from '../readings/attention.js';
import { poseFromPoints } from '../readings/pose.js';
import type { StreamState, TrackState } from '../stream-state.js';
import type { Classified, Labelled } from './work.js';

// what a reading carries when bench:readings turns the readings off (StreamStateOptions.readings)
const NO_AFFECT = { valence: 0, arousal: 0 };
const NO_ATTENTION: Attention = { looking: null, yaw: null, pitch: null, from: null };

/**
 * Probabilities to what a person sees: the label (smoothing, hidden labels,
 * `uncertain`, hysteresis: labeller.ts), valence and arousal from the same smoothed
 * probabilities, attention from the head pose (the mesh's, or the five points'), the
 * distance from a personal baseline where there is one. Every reading counts in its
 * face's summary; which become events is the emit mode's choice: every window, or
 * (emit 'change') a changed label and at least one per heartbeat.
 */
export function label(s: StreamState): OperatorFunction<Classified, Labelled> {
  const c = s.o.model.labels.length;
  const { shown } = s.o.policy;
  const emit = s.o.emit;
  const on = s.o.readings ?? true;
  const wanted = (st: TrackState, label: string, ts: number): boolean => {
    if (emit?.mode !== 'change') return true;
    if (label === st.lastLabel && ts - st.lastEmitTs < emit.heartbeatMs) return false;
    st.lastLabel = label;
    st.lastEmitTs = ts;
    return true;
  };
  return map((w) => {
    const ts = w.frame.ts;
    const readings = w.due.map((due, slot) => {
      const reading = due.state.labeller.update(w.probs.subarray(slot * c, (slot + 1) * c));
      if (!on) return { due, reading, affect: NO_AFFECT, attention: NO_ATTENTION, pose: null, baseline: null };
      const affect = affectOf(reading.probs, s.circumplex, shown);
      const face = due.track.face;
      const pose = face.pose ?? poseFromPoints(face.points);
      const attention = attentionOf(pose, face.pose ? 'mesh' : 'points', s.o.attention);
      const baseline = due.state.baseline?.update(ts, reading.probs, affect) ?? null;
      due.state.summary.add(ts, reading.label, affect, attention.looking);
      return { due, reading, affect, attention, pose, baseline };
    });
    return { ...w, readings: readings.filter(({ due, reading }) => wanted(due.state, reading.label, ts)) };
  });
}
