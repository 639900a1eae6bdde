import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { modelsPull, YUNET } from '../src/cli/models.js';
import { silentLogger } from '../src/log.js';
import { ROOT } from '../src/paths.js';
import { SHARED } from './helpers.js';

/** No network here: the download is answered with the shared copy of the same file (or garbage). */
const serving =
  (body: Buffer): typeof fetch =>
  async (url) => {
    assert.equal(String(url), YUNET.url);
    return new Response(new Uint8Array(body));
  };

describe('models pull, YuNet (download served from the shared copy: this machine has no network)', () => {
  const withLandmarker = (): string => {
    const dir = mkdtempSync(join(tmpdir(), 'arpgnet-models-'));
    mkdirSync(join(dir, 'mediapipe'));
    writeFileSync(join(dir, 'mediapipe', 'face_landmarker.task'), 'present: not downloaded again');
    return dir;
  };

  it('saves the detector after opening it, and fetches nothing already there', async () => {
    const dir = withLandmarker();
    const real = readFileSync(join(SHARED, 'models', 'yunet', 'yunet_s_dynamic.onnx'));
    assert.equal(await modelsPull(dir, undefined, silentLogger, serving(real)), 0);
    assert.deepEqual(readFileSync(join(dir, YUNET.file)), real);
    const nothing: typeof fetch = () => Promise.reject(new Error('nothing should be fetched'));
    assert.equal(await modelsPull(dir, undefined, silentLogger, nothing), 0);
  });

  it('refuses a body that is not the YuNet export, and saves nothing', async () => {
    const dir = withLandmarker();
    await assert.rejects(modelsPull(dir, undefined, silentLogger, serving(Buffer.from('<html>not found</html>'))), /not an ONNX model/);
    const other = readFileSync(join(SHARED, 'models', 'mediapipe', 'face_detector.tflite'));
    await assert.rejects(modelsPull(dir, undefined, silentLogger, serving(other)), /not an ONNX model|not the YuNet export/);
    // a real ONNX model, but not a face detector
    const encoder = readFileSync(join(ROOT, 'models', 'arpgnet-edge.encoder.onnx'));
    await assert.rejects(modelsPull(dir, undefined, silentLogger, serving(encoder)), /not the YuNet export.*cls_8/);
    assert.equal(existsSync(join(dir, YUNET.file)), false);
  });
});
