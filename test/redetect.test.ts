import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { RgbaFrame } from '../src/ingest/frame.js';
import type { DetectedFace } from '../src/pipeline/faces/face.js';
import { DetectionReuse } from '../src/pipeline/faces/reuse.js';
import { StreamFaces } from '../src/pipeline/faces/stream-faces.js';
import { rgbaFrames, SHARED } from './helpers.js';

const W = 64;
/** A grey frame with a bright square where the face box is (left half), `shift` px to the right. */
function frame(shift = 0, fillRight = 0): RgbaFrame {
  const data = new Uint8Array(W * W * 4);
  for (let y = 0; y < W; y++)
    for (let x = 0; x < W; x++) {
      const inSquare = x >= 8 + shift && x < 24 + shift && y >= 8 && y < 24;
      const v = inSquare ? 220 : x >= 40 ? fillRight : 40;
      data.set([v, v, v, 255], (y * W + x) * 4);
    }
  return { data, width: W, height: W };
}
const face: DetectedFace = {
  box: { x: 4 / W, y: 4 / W, w: 24 / W, h: 24 / W },
  points: [
    [12, 12],
    [20, 12],
    [16, 16],
    [13, 20],
    [19, 20],
  ],
};

describe('detection reuse', () => {
  it('a still picture reuses a detection for every - 1 frames, then detects again', () => {
    const r = new DetectionReuse({ every: 3, motion: 3 });
    const answers: string[] = [];
    for (let i = 0; i < 7; i++) {
      const f = frame();
      const kept = r.lookup(f);
      if (kept) answers.push('reuse');
      else {
        r.store(f, [face]);
        answers.push('detect');
      }
    }
    assert.deepEqual(answers, ['detect', 'reuse', 'reuse', 'detect', 'reuse', 'reuse', 'detect']);
    assert.equal(r.reused, 4);
    assert.equal(r.detected, 3);
  });

  it('motion under the faces, a new frame size or nothing found means detecting again; motion elsewhere does not', () => {
    const r = new DetectionReuse({ every: 10, motion: 3 });
    r.store(frame(), [face]);
    assert.ok(r.lookup(frame(0, 250)), 'a change outside the face box leaves the detection standing');
    assert.equal(r.lookup(frame(4)), null, 'the face moved 4 px');
    assert.ok(r.lastChange > 3);
    assert.equal(r.lookup({ data: new Uint8Array(32 * 32 * 4), width: 32, height: 32 }), null);
    r.store(frame(), []);
    assert.equal(r.lookup(frame()), null, 'nothing found last time: look again');
  });

  it('every: 1 never reuses', () => {
    const r = new DetectionReuse({ every: 1, motion: 255 });
    r.store(frame(), [face]);
    assert.equal(r.lookup(frame()), null);
  });
});

/** The first n frames of a real clip at 320x320, as copies (the decoder's buffers are reused). */
function clip(name: string, n: number): RgbaFrame[] {
  const raw = rgbaFrames(name, ['-frames:v', String(n), '-vf', 'scale=320:320']);
  const size = 320 * 320 * 4;
  return Array.from({ length: n }, (_, i) => ({ data: new Uint8Array(raw.subarray(i * size, (i + 1) * size)), width: 320, height: 320 }));
}

const finder = (every: number): Promise<StreamFaces> =>
  StreamFaces.create({
    modelPath: join(SHARED, 'models', 'mediapipe', 'face_landmarker.task'),
    maxFaces: 1,
    detector: 'yunet',
    yunetPath: join(SHARED, 'models', 'yunet', 'yunet_s_dynamic.onnx'),
    yunetSize: 320,
    smallFaces: true,
    actions: false,
    redetect: { every, motion: 3 },
  });

describe('detection reuse on real clips (YuNet)', () => {
  it('a steady talking head (d18) is detected on a fraction of its frames, its points within a tenth of the eye distance of a fresh detection', async () => {
    // every third decoded frame: what a 30 fps clip analysed at 10 fps hands over
    const frames = clip('d18.mp4', 90).filter((_, i) => i % 3 === 0);
    const reusing = await finder(3);
    const fresh = await finder(1);
    let worst = 0;
    for (const [i, f] of frames.entries()) {
      const a = await reusing.detect(f, i * 100);
      const b = await fresh.detect(f, i * 100);
      assert.equal(a.length, b.length, `frame ${i}: the same faces`);
      const p = b[0]!.points;
      const eyes = Math.hypot(p[1][0] - p[0][0], p[1][1] - p[0][1]);
      for (const [k, q] of a[0]!.points.entries()) worst = Math.max(worst, Math.hypot(q[0] - p[k]![0], q[1] - p[k]![1]) / eyes);
    }
    assert.ok(reusing.reuse.reused >= frames.length / 3, `reused ${reusing.reuse.reused} of ${frames.length}`);
    assert.equal(fresh.reuse.reused, 0);
    assert.ok(worst < 0.1, `points moved ${worst.toFixed(3)} eye distances from a fresh detection`);
    await Promise.all([reusing.close(), fresh.close()]);
  });

  it('a moving head (d12) is detected again on most frames', async () => {
    const frames = clip('d12.mp4', 75).filter((_, i) => i % 3 === 0);
    const reusing = await finder(3);
    for (const [i, f] of frames.entries()) await reusing.detect(f, i * 100);
    assert.ok(reusing.reuse.detected >= frames.length * 0.7, `detected ${reusing.reuse.detected} of ${frames.length}`);
    await reusing.close();
  });
});
