import { map, type OperatorFunction } from 'rxjs';
import { faceEnter } from '../../publish/envelopes.js';
import type { StreamState } from '../stream-state.js';
import type { Found, Tracked } from './work.js';

/** Faces to tracks by overlap: a face_enter for each new track, a last summary and a face_leave for each lost one. */
export function track(s: StreamState): OperatorFunction<Found, Tracked> {
  return map(({ frame, faces }) => {
    const upd = s.tracker.update(faces, frame.ts);
    const events: Tracked['events'] = [];
    for (const tr of upd.left) events.push(...s.leave(tr.id, frame.ts, 'lost'));
    for (const tr of upd.entered) {
      s.states.set(tr.id, s.newTrackState(frame.ts));
      events.push(faceEnter(s.base(frame.ts), tr.id, tr.face.box));
    }
    if (!upd.seen.length) s.framesWithoutFace++;
    return { frame, faces, seen: upd.seen, events };
  });
}
