import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { defaults } from '../src/config.js';
import { decodeImage } from '../src/ingest/still-image.js';
import { silentLogger } from '../src/log.js';
import { Arpgnet, mirrorMeans } from '../src/model/arpgnet.js';
import { cropToInput, warpToTensor } from '../src/pipeline/align.js';
import { ROOT, SHARED } from './helpers.js';

const FLOAT = { encoder: join(ROOT, 'models/arpgnet-edge.encoder.onnx'), head: join(ROOT, 'models/arpgnet-edge.head.onnx') };
const cpu = { providers: ['cpu' as const], intraOpThreads: 1 };

/** Every label's probability for n real FER2013 val faces (face and mirror averaged, held for the window, as eval reads stills). */
async function read(m: Arpgnet, paths: string[]): Promise<Float32Array> {
  const { width, height } = m.preprocess.inputSize;
  const per = width * height;
  const faces = new Float32Array(2 * paths.length * per);
  paths.forEach((p, i) => {
    const img = decodeImage(p);
    const sim = cropToInput(img.width, img.height, width, height);
    warpToTensor(img, sim, m.preprocess, faces, 2 * i * per, false);
    warpToTensor(img, sim, m.preprocess, faces, (2 * i + 1) * per, true);
  });
  const emb = mirrorMeans(await m.encode(faces, 2 * paths.length), paths.length);
  const t = m.window;
  const app = new Float32Array(paths.length * t * m.appDim);
  const rel = new Float32Array(paths.length * t * m.relDim);
  for (let i = 0; i < paths.length; i++)
    for (let k = 0; k < t; k++) {
      app.set(emb.app.subarray(i * m.appDim, (i + 1) * m.appDim), (i * t + k) * m.appDim);
      rel.set(emb.rel.subarray(i * m.relDim, (i + 1) * m.relDim), (i * t + k) * m.relDim);
    }
  return m.classify(app, rel, new Float32Array(paths.length * t).fill(1), paths.length);
}

describe('the int8 (QDQ) encoder the CPU runs by default', () => {
  it('is the default, says how it was quantised, and pairs with the float head', async () => {
    const cfg = defaults();
    assert.match(cfg.models.encoder, /arpgnet-edge\.encoder\.int8\.onnx$/);
    const m = await Arpgnet.load(cfg.models, cpu, silentLogger);
    assert.match(m.quantization ?? '', /^QDQ int8: 17 Conv/);
    assert.match(m.version, /\+int8$/);
    await m.release();
    const f = await Arpgnet.load(FLOAT, cpu, silentLogger);
    assert.equal(f.quantization, null, 'the float graph stays the reference (TensorRT, calibration)');
    await f.release();
  });

  it('reads real faces as the float encoder does', async () => {
    const root = join(SHARED, 'data', 'fer2013', 'val');
    // 30 faces of each class: the classes where the two could part are all in
    const paths = readdirSync(root)
      .sort()
      .flatMap((c) =>
        readdirSync(join(root, c))
          .sort()
          .slice(0, 30)
          .map((f) => join(root, c, f)),
      );
    const q = await Arpgnet.load(defaults().models, cpu, silentLogger);
    const f = await Arpgnet.load(FLOAT, cpu, silentLogger);
    const [pq, pf] = [await read(q, paths), await read(f, paths)];
    await q.release();
    await f.release();
    const c = q.labels.length;
    let same = 0;
    let worst = 0;
    for (let i = 0; i < paths.length; i++) {
      const a = pq.subarray(i * c, (i + 1) * c);
      const b = pf.subarray(i * c, (i + 1) * c);
      if (a.indexOf(Math.max(...a)) === b.indexOf(Math.max(...b))) same++;
      for (let k = 0; k < c; k++) worst = Math.max(worst, Math.abs(a[k]! - b[k]!));
    }
    // measured: 3,589 FER2013 val faces, 62.83 % against 63.05 % (MODEL_CARD.md)
    assert.ok(same / paths.length >= 0.95, `same top label on ${same} of ${paths.length} faces`);
    assert.ok(worst < 0.25, `largest probability difference ${worst.toFixed(3)}`);
  });
});
