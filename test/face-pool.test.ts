import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { silentLogger } from '../src/log.js';
import { FacePool } from '../src/pipeline/faces/face-pool.js';
import { StreamFaces, type Detector, type FaceFinderOptions } from '../src/pipeline/faces/stream-faces.js';
import { sessionOptions } from '../src/config.js';
import { rgbaFrames, SHARED, testConfig } from './helpers.js';

const opts = (detector: Detector): FaceFinderOptions => ({
  modelPath: join(SHARED, 'models', 'mediapipe', 'face_landmarker.task'),
  maxFaces: 1,
  detector,
  yunetPath: join(SHARED, 'models', 'yunet', 'yunet_s_dynamic.onnx'),
  yunetSize: 320,
  smallFaces: true,
  redetect: { every: 1, motion: 4 },
});

/** Frames of a real clip in shared memory, as the frame pool hands them out. */
function frames(n: number): Array<{ data: Uint8Array; width: number; height: number }> {
  const raw = rgbaFrames('d18.mp4', ['-frames:v', String(n), '-vf', 'scale=480:480']);
  const size = 480 * 480 * 4;
  return Array.from({ length: n }, (_, i) => {
    const data = new Uint8Array(new SharedArrayBuffer(size));
    data.set(raw.subarray(i * size, (i + 1) * size));
    return { data, width: 480, height: 480 };
  });
}

describe('face finding on worker threads', () => {
  for (const detector of ['yunet', 'mediapipe'] as const)
    it(`${detector}: finds the same faces as on the main thread, and survives its worker dying`, async () => {
      const fs = frames(6);
      const local = await StreamFaces.create(opts(detector));
      const pool = new FacePool(1, silentLogger);
      try {
        const remote = await pool.open(opts(detector));
        for (const [i, f] of fs.entries()) {
          const a = await local.detect(f, i * 33);
          const b = await remote.detect(f, i * 33);
          assert.equal(b.length, 1);
          assert.deepEqual(b[0]!.points, a[0]!.points, `frame ${i}: the same landmarks`);
        }
        // a frame outside shared memory crosses by a copy
        const plain = { ...fs[0]!, data: Uint8Array.from(fs[0]!.data) };
        assert.equal((await remote.detect(plain, 1000)).length, 1);

        // the worker dies: requests in flight fail, the next frame reopens a landmarker in its replacement
        const slot = (pool as unknown as { slots: Array<{ worker: { terminate(): Promise<number> } }> }).slots[0]!;
        await slot.worker.terminate();
        await new Promise((r) => setTimeout(r, 100));
        assert.equal(pool.deaths, 1);
        assert.equal((await remote.detect(fs[1]!, 2000)).length, 1, 'landmarks again after the worker was replaced');
        await remote.close();
      } finally {
        await local.close();
        await pool.close();
      }
    });

  it('close lets every worker release its sessions and end by itself, with streams still open', async () => {
    const f = frames(1)[0]!;
    const pool = new FacePool(2, silentLogger);
    const workers = (pool as unknown as { slots: Array<{ worker: { once(e: 'exit', l: (code: number) => void): void } }> }).slots.map(
      (s) => s.worker,
    );
    const codes = workers.map((w) => new Promise<number>((r) => w.once('exit', r)));
    const streams = await Promise.all([0, 1, 2, 3].map(() => pool.open(opts('yunet'))));
    await Promise.all(streams.map((s, i) => s.detect(f, i)));
    // two streams are closing (not awaited, as a stream's end does it), two are still open
    void streams[0]!.close();
    void streams[1]!.close();
    await pool.close();
    // terminate() would end them with code 1: only a worker that returned from its own loop exits 0
    assert.deepEqual(await Promise.all(codes), [0, 0]);
    assert.equal(pool.forcedStops, 0);
  });
});

describe('inference on worker threads', () => {
  it('a worker that dies mid-encode fails the requests in flight, and its replacement reloads the model and encodes the same', async () => {
    const cfg = testConfig();
    const pool = new FacePool(1, silentLogger);
    try {
      await pool.loadModel({ files: cfg.models, opts: { ...sessionOptions(cfg), providers: ['cpu'] } });
      const remote = await pool.open(opts('yunet'));
      const inference = remote.inference!;
      assert.ok(inference, 'a pool with a model runs each stream inference beside its face finding');
      const perFace = 48 * 48;
      // inputs cross to the worker in shared memory, as the stream state allocates them
      const faces = new Float32Array(new SharedArrayBuffer(16 * perFace * 4));
      for (let i = 0; i < faces.length; i++) faces[i] = Math.sin(i * 0.01);
      const before = await inference.encode(faces, 16);
      // several encodes queued, the worker killed while they run
      const inFlight = Array.from({ length: 4 }, () => inference.encode(faces, 16));
      const slot = (pool as unknown as { slots: Array<{ worker: { terminate(): Promise<number> } }> }).slots[0]!;
      await slot.worker.terminate();
      const settled = await Promise.allSettled(inFlight);
      const failed = settled.filter((s) => s.status === 'rejected');
      assert.ok(failed.length >= 1, 'at least the request on the dying worker fails');
      for (const f of failed) assert.match(String((f as PromiseRejectedResult).reason), /the face worker died/);
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(pool.deaths, 1);
      const after = await inference.encode(faces, 16);
      assert.equal(after.app.length, before.app.length);
      let worst = 0;
      for (let i = 0; i < after.app.length; i++) worst = Math.max(worst, Math.abs(after.app[i]! - before.app[i]!));
      assert.ok(worst < 1e-4, `the replacement encodes as the first worker did (max difference ${worst})`);
      await remote.close();
    } finally {
      await pool.close();
    }
  });
});
