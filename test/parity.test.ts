import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { silentLogger } from '../src/log.js';
import { Arpgnet } from '../src/model/arpgnet.js';
import { templateToFrame, warpToTensor } from '../src/pipeline/align.js';
import { MediaPipeFaces } from '../src/pipeline/faces/mediapipe.js';
import { rgbaFrames, ROOT, SHARED } from './helpers.js';

const PY = '/usr/bin/python3';
const py = (args: string[]): string =>
  execFileSync(PY, ['-m', 'arpgnet.parity', ...args], { cwd: join(ROOT, 'training'), encoding: 'utf8' });
const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
};

describe('PyTorch <-> onnxruntime-node parity', () => {
  it('the exported encoder and head match PyTorch within 1e-4 on fixed inputs', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'arpgnet-parity-'));
    py(['model', '--out', dir]);
    const fx = JSON.parse(readFileSync(join(dir, 'fixture.json'), 'utf8')) as Record<string, number[]>;
    const m = await Arpgnet.load(
      { encoder: join(dir, 'encoder.onnx'), head: join(dir, 'head.onnx') },
      { providers: ['cpu'], intraOpThreads: 1 },
      silentLogger,
    );
    const e = await m.encode(Float32Array.from(fx['faces']!), 3);
    const dApp = maxDiff(e.app, fx['app_out']!);
    const dRel = maxDiff(e.rel, fx['rel_out']!);
    const logits = await m.logits(Float32Array.from(fx['app_in']!), Float32Array.from(fx['rel_in']!), Float32Array.from(fx['valid']!), 2);
    const dLogits = maxDiff(logits, fx['logits']!);
    await m.release();
    assert.ok(dApp < 1e-4 && dRel < 1e-4, `encoder differs: appearance ${dApp}, relation ${dRel}`);
    assert.ok(dLogits < 1e-4, `head logits differ by ${dLogits}`);
  });

  it('the encoder without its mirror pass (strip_flip) gives, averaged over a face and its mirror, what the mirrored graph gave', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'arpgnet-flip-'));
    const out = join(dir, 'stripped');
    execFileSync(PY, ['-m', 'arpgnet.parity', 'preset', 'edge', '--flip-average', '--stem', 'arpgnet-edge', '--out', dir], {
      cwd: join(ROOT, 'training'),
    });
    execFileSync(PY, ['-m', 'arpgnet.strip_flip', dir, out, '--version', '0.0.1-test'], { cwd: join(ROOT, 'training') });
    const load = (d: string): Promise<Arpgnet> =>
      Arpgnet.load(
        { encoder: join(d, 'arpgnet-edge.encoder.onnx'), head: join(d, 'arpgnet-edge.head.onnx') },
        { providers: ['cpu'], intraOpThreads: 1 },
        silentLogger,
      );
    const [both, own] = [await load(dir), await load(out)];
    assert.equal(both.flipAverage, true);
    assert.equal(own.flipAverage, false);
    assert.equal(own.version, '0.0.1-test');
    const { width: w, height: h } = own.preprocess.inputSize;
    let seed = 7;
    const face = Float32Array.from({ length: w * h }, () => ((seed = (seed * 16807) % 2147483647) / 2147483647) * 2 - 1);
    const pair = new Float32Array(2 * w * h);
    pair.set(face);
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) pair[w * h + y * w + x] = face[y * w + (w - 1 - x)]!;
    const ref = await both.encode(face, 1);
    const two = await own.encode(pair, 2);
    const avg = (v: Float32Array): Float32Array => {
      const d = v.length / 2;
      return Float32Array.from({ length: d }, (_, i) => (v[i]! + v[d + i]!) / 2);
    };
    const dApp = maxDiff(avg(two.app), ref.app);
    const dRel = maxDiff(avg(two.rel), ref.rel);
    // and not trivially: the mirror's embedding is another one
    const apart = maxDiff(two.app.subarray(0, two.app.length / 2), two.app.subarray(two.app.length / 2));
    await both.release();
    await own.release();
    assert.ok(dApp < 1e-4 && dRel < 1e-4, `averaged differ from the mirrored graph: appearance ${dApp}, relation ${dRel}`);
    assert.ok(apart > 1e-3, `face and mirror embed alike (${apart}): the check would not see a missing mirror`);
  });

  it('TypeScript and Python preprocessing of a real face agree within 1/255', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'arpgnet-warp-'));
    const [w, h] = [480, 480];
    const raw = rgbaFrames('d18.mp4', ['-vf', 'select=eq(n\\,40)', '-frames:v', '1']);
    const rgba = new Uint8Array(raw);
    writeFileSync(join(dir, 'frame.rgba'), rgba);
    const lm = await MediaPipeFaces.create({
      modelPath: join(SHARED, 'models/mediapipe/face_landmarker.task'),
      maxFaces: 1,
      mode: 'IMAGE',
    });
    const face = lm.detect({ data: rgba, width: w, height: h }, 0)[0];
    await lm.close();
    assert.ok(face, 'a face in frame 40 of d18.mp4');
    const m = await Arpgnet.load(
      { encoder: join(ROOT, 'models/arpgnet-edge.encoder.onnx'), head: join(ROOT, 'models/arpgnet-edge.head.onnx') },
      { providers: ['cpu'], intraOpThreads: 1 },
      silentLogger,
    );
    const pre = m.preprocess;
    await m.release();
    const ts = new Float32Array(m.channels * pre.inputSize.width * pre.inputSize.height);
    warpToTensor({ data: rgba, width: w, height: h }, templateToFrame(face.points, pre.template), pre, ts, 0);
    py([
      'warp',
      '--rgba',
      join(dir, 'frame.rgba'),
      '--width',
      String(w),
      '--height',
      String(h),
      '--points',
      JSON.stringify(face.points),
      '--out',
      join(dir, 'py.f32'),
    ]);
    const buf = readFileSync(join(dir, 'py.f32'));
    const pyT = new Float32Array(buf.buffer, buf.byteOffset, buf.length / 4);
    // compare in pixel units: the tensor is (x/255 - mean) / std
    const d = maxDiff(ts, pyT) * pre.std * 255;
    assert.ok(d < 1, `preprocessing differs by ${d.toFixed(4)} grey levels`);
  });
});
