import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { defaults, sessionOptions } from '../src/config.js';
import { silentLogger } from '../src/log.js';
import { Arpgnet } from '../src/model/arpgnet.js';
import { EncoderBatcher } from '../src/model/batcher.js';

describe('encoder batching across streams (the shipped encoder)', () => {
  it('calls of several streams go through one run and each gets its own embeddings; one stream alone never waits', async () => {
    const cfg = defaults();
    cfg.runtime = { ...cfg.runtime, providers: ['cpu'] };
    const model = await Arpgnet.load(cfg.models, sessionOptions(cfg), silentLogger);
    try {
      const { width, height } = model.preprocess.inputSize;
      const size = model.channels * width * height;
      let seed = 7;
      const rand = (): number => ((seed = (seed * 16807) % 2147483647) / 2147483647) * 2 - 1;
      const faces = [1, 2, 1].map((n) => Float32Array.from({ length: n * size }, rand));
      const alone = await Promise.all(faces.map((f, i) => model.encode(f, [1, 2, 1][i]!)));

      const b = new EncoderBatcher((f, n) => model.encode(f, n), size, { waitMs: 1000, maxFaces: 16 });
      [0, 1, 2].forEach(() => b.join());
      const t = performance.now();
      const batched = await Promise.all(faces.map((f, i) => b.encode(f, [1, 2, 1][i]!)));
      assert.ok(performance.now() - t < 900, 'the third stream completed the batch: nobody waited out waitMs');
      assert.deepEqual(b.stats, { runs: 1, faces: 4 });
      batched.forEach((e, i) => {
        assert.equal(e.app.length, alone[i]!.app.length);
        e.app.forEach((v, k) => assert.ok(Math.abs(v - alone[i]!.app[k]!) < 1e-4, `stream ${i} appearance ${k}`));
        e.rel.forEach((v, k) => assert.ok(Math.abs(v - alone[i]!.rel[k]!) < 1e-4, `stream ${i} relation ${k}`));
      });

      // two streams leave: the one left runs at once
      b.leave();
      b.leave();
      const p = b.encode(faces[0]!, 1);
      assert.equal(b.stats.runs, 2, 'run without waiting');
      await p;
    } finally {
      await model.release();
    }
  });
});
