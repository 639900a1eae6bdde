import { mergeMap, type OperatorFunction } from 'rxjs';
import { emotionEvent } from '../../publish/envelopes.js';
import type { PipelineEvent } from '../../publish/events.js';
import type { StreamState } from '../stream-state.js';
import type { Labelled } from './work.js';

/**
 * The frame's events in order: face_enter / face_leave (with a leaving face's last
 * summary), one emotion event per reading, then the summaries that are due.
 */
export function toEvents(s: StreamState): OperatorFunction<Labelled, PipelineEvent> {
  const { model } = s.o;
  return mergeMap(({ frame, events, readings, due }) => [
    ...events,
    ...readings.map(({ due: { track, window }, reading: r, affect, attention, pose, baseline }) => {
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
        pose: pose ?? undefined,
        detection: track.face.score,
        actions: track.face.actions,
        affect,
        attention,
        baseline,
      });
    }),
    ...due.filter((d) => d.state.summary.due(frame.ts, s.o.summaryEveryMs)).map((d) => s.summaryOf(d.track.id, d.state, frame.ts, false)),
  ]);
}
