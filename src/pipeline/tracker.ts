import { iou, type DetectedFace } from './faces/face.js';

export interface Track {
  readonly id: string;
  face: DetectedFace;
  lastSeen: number;
  firstSeen: number;
  misses: number;
}

export interface TrackUpdate {
  /** Tracks matched or created on this frame, with this frame's face. */
  seen: Track[];
  entered: Track[];
  left: Track[];
}

export interface TrackerOptions {
  /** A track survives this long without its face before it leaves. */
  maxMissMs: number;
  /** Least overlap with the track's last box to count as the same face. */
  minIou: number;
}

/**
 * Keeps stable face ids across frames: greedy best-overlap matching of the frame's
 * faces to live tracks; a face with no match opens a track, a track unmatched for
 * longer than maxMissMs closes. Ids are unique within the stream.
 */
export class FaceTracker {
  private readonly tracks: Track[] = [];
  private next = 1;

  constructor(private readonly o: TrackerOptions) {}

  get active(): readonly Track[] {
    return this.tracks;
  }

  update(faces: readonly DetectedFace[], ts: number): TrackUpdate {
    const pairs: Array<[number, number, number]> = [];
    this.tracks.forEach((t, ti) =>
      faces.forEach((f, fi) => {
        const o = iou(t.face.box, f.box);
        if (o >= this.o.minIou) pairs.push([o, ti, fi]);
      }),
    );
    pairs.sort((a, b) => b[0] - a[0]);
    const usedT = new Set<number>();
    const usedF = new Set<number>();
    const seen: Track[] = [];
    for (const [, ti, fi] of pairs) {
      if (usedT.has(ti) || usedF.has(fi)) continue;
      usedT.add(ti);
      usedF.add(fi);
      const t = this.tracks[ti]!;
      t.face = faces[fi]!;
      t.lastSeen = ts;
      t.misses = 0;
      seen.push(t);
    }
    const entered: Track[] = [];
    faces.forEach((f, fi) => {
      if (usedF.has(fi)) return;
      const t: Track = { id: `f${this.next++}`, face: f, lastSeen: ts, firstSeen: ts, misses: 0 };
      this.tracks.push(t);
      entered.push(t);
      seen.push(t);
    });
    const left: Track[] = [];
    for (let i = this.tracks.length - 1; i >= 0; i--) {
      const t = this.tracks[i]!;
      if (t.lastSeen === ts) continue;
      t.misses++;
      if (ts - t.lastSeen > this.o.maxMissMs) {
        left.push(t);
        this.tracks.splice(i, 1);
      }
    }
    return { seen, entered, left };
  }

  /** Ends every track (stream end). */
  closeAll(): Track[] {
    return this.tracks.splice(0, this.tracks.length);
  }
}
