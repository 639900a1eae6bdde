import { map, type OperatorFunction } from 'rxjs';
import type { StreamState } from '../stream-state.js';
import type { Found, Tracked } from './work.js';

/** Faces to tracks by overlap: a face_enter for each new track, a face_leave for each lost one. */
export function track(s: StreamState): OperatorFunction<Found, Tracked> {
  return map(({ frame, faces }) => {
    const upd = s.tracker.update(faces, frame.ts);
    const events: Tracked['events'] = [];
    for (const tr of upd.left) {
      s.states.delete(tr.id);
      events.push({ ...s.base(frame.ts), type: 'face_leave', track: tr.id, reason: 'lost' });
    }
    for (const tr of upd.entered) {
      s.states.set(tr.id, s.newTrackState());
      events.push({ ...s.base(frame.ts), type: 'face_enter', track: tr.id, box: tr.face.box });
    }
    if (!upd.seen.length) s.framesWithoutFace++;
    return { frame, faces, seen: upd.seen, events };
  });
}
