import { mergeMap, type OperatorFunction } from 'rxjs';
import { emotionEvent } from '../../publish/envelopes.js';
import type { PipelineEvent } from '../../publish/events.js';
import type { StreamState } from '../stream-state.js';
import type { Labelled } from './work.js';

/** The frame's events in order: face_enter / face_leave, then one emotion event per reading. */
export function toEvents(s: StreamState): OperatorFunction<Labelled, PipelineEvent> {
  const { model } = s.o;
  return mergeMap(({ frame, events, readings }) => [
    ...events,
    ...readings.map(({ due: { track, window }, reading: r }) => {
      s.emotions++;
      return emotionEvent(s.base(frame.ts), {
        track: track.id,
        window,
        label: r.label,
        confidence: r.confidence,
        probs: r.probs,
        labels: model.labels,
        shown: s.o.policy.shown,
        box: track.face.box,
        model,
        arrivedAt: frame.arrivedAt,
        frameHeight: frame.height,
        pose: track.face.pose,
        detection: track.face.score,
        actions: track.face.actions,
      });
    }),
  ]);
}
