import { mergeMap, type OperatorFunction } from 'rxjs';
import type { EmotionEvent, PipelineEvent } from '../../publish/events.js';
import type { StreamState } from '../stream-state.js';
import type { Labelled } from './work.js';

/** The frame's events in order: face_enter / face_leave, then one emotion event per reading. */
export function toEvents(s: StreamState): OperatorFunction<Labelled, PipelineEvent> {
  const { model } = s.o;
  return mergeMap(({ frame, events, readings }) => [
    ...events,
    ...readings.map(({ due: { track, window }, reading: r }): EmotionEvent => {
      // hidden labels are not offered as scores either: what is not shown is not suggested
      const scores: Record<string, number> = {};
      model.labels.forEach((l, k) => {
        if (s.o.policy.shown[k]) scores[l] = Math.round(r.probs[k]! * 1e4) / 1e4;
      });
      s.emotions++;
      return {
        ...s.base(frame.ts),
        type: 'emotion',
        track: track.id,
        window,
        label: r.label,
        confidence: Math.round(r.confidence * 1e4) / 1e4,
        scores,
        box: track.face.box,
        model: { name: model.name, version: model.version },
        latencyMs: Math.round((performance.now() - frame.arrivedAt) * 100) / 100,
        quality: {
          faceSizePx: Math.round(track.face.box.h * frame.height),
          yaw: track.face.pose?.yaw ?? null,
          pitch: track.face.pose?.pitch ?? null,
          roll: track.face.pose?.roll ?? null,
          detection: track.face.score ?? null,
        },
        ...(track.face.actions ? { actions: track.face.actions } : {}),
      };
    }),
  ]);
}
