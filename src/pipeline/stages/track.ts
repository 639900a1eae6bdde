import { map, type OperatorFunction } from 'rxjs';
import { faceEnter, faceLeave } from '../../publish/envelopes.js';
import type { StreamState } from '../stream-state.js';
import type { Found, Tracked } from './work.js';

/** Faces to tracks by overlap: a face_enter for each new track, a face_leave for each lost one. */
export function track(s: StreamState): OperatorFunction<Found, Tracked> {
  return map(({ frame, faces }) => {
    const upd = s.tracker.update(faces, frame.ts);
    const events: Tracked['events'] = [];
    for (const tr of upd.left) {
      s.states.delete(tr.id);
      events.push(faceLeave(s.base(frame.ts), tr.id, 'lost'));
    }
    for (const tr of upd.entered) {
      s.states.set(tr.id, s.newTrackState());
      events.push(faceEnter(s.base(frame.ts), tr.id, tr.face.box));
    }
    if (!upd.seen.length) s.framesWithoutFace++;
    return { frame, faces, seen: upd.seen, events };
  });
}
