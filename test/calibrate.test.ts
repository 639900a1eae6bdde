import assert from 'node:assert/strict';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import * as ort from 'onnxruntime-node';
import { exposeAllOutputs } from '../src/model/onnx-outputs.js';
import { ROOT, runCli, SHARED } from './helpers.js';

const ENCODER = join(ROOT, 'models', 'arpgnet-edge.encoder.onnx');

describe('INT8 calibration table for TensorRT (models calibrate)', () => {
  it('exposing every intermediate tensor keeps the model computing the same outputs', async () => {
    const bytes = new Uint8Array(readFileSync(ENCODER));
    const exposed = exposeAllOutputs(bytes);
    assert.deepEqual(exposed.inputs, ['face']);
    assert.ok(exposed.tensors.length > 50);
    const a = await ort.InferenceSession.create(bytes);
    const b = await ort.InferenceSession.create(exposed.model);
    assert.ok(b.outputNames.length === exposed.tensors.length - 1, 'every node output is a graph output');
    const x = new ort.Tensor(
      'float32',
      Float32Array.from({ length: 48 * 48 }, (_, i) => Math.sin(i)),
      [1, 1, 48, 48],
    );
    const ra = await a.run({ face: x });
    const rb = await b.run({ face: x });
    // the same numbers up to float rounding (exposed tensors stop some kernel fusions)
    const da = ra['appearance']!.data as Float32Array;
    const db = rb['appearance']!.data as Float32Array;
    assert.equal(db.length, da.length);
    assert.ok(da.every((v, i) => Math.abs(v - db[i]!) < 1e-4));
    await a.release();
    await b.release();
  });

  it('writes TensorRT cache lines for every tensor from a folder of real aligned faces', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'arpgnet-calib-'));
    const faces = join(dir, 'faces');
    mkdirSync(faces);
    const src = join(SHARED, 'data', 'fer2013', 'val', 'happy');
    for (const f of readdirSync(src).slice(0, 24)) cpSync(join(src, f), join(faces, f));
    const out = join(dir, 'calib.cache');
    const r = await runCli(['models', 'calibrate', '--faces', faces, '--out', out, '--encoder', ENCODER, '--providers', 'cpu']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal((JSON.parse(r.stdout) as { faces: number }).faces, 24);
    const lines = readFileSync(out, 'utf8').trim().split('\n');
    assert.match(lines[0]!, /^TRT-\d+-EntropyCalibration2$/);
    const range = (hex: string): number => new Float32Array(new Uint32Array([parseInt(hex, 16)]).buffer)[0]! * 127;
    const table = new Map(lines.slice(1).map((l) => [l.slice(0, l.lastIndexOf(': ')), range(l.slice(l.lastIndexOf(': ') + 2))]));
    assert.ok(table.size > 50);
    // faces normalised with mean = std = 0.5 span [-1, 1]
    assert.ok(table.get('face')! > 0.9 && table.get('face')! <= 1.0001, `face range ${table.get('face')}`);
    for (const [name, v] of table) assert.ok(v > 0 && Number.isFinite(v), `${name}: ${v}`);

    const empty = join(dir, 'empty');
    mkdirSync(empty);
    const e = await runCli(['models', 'calibrate', '--faces', empty, '--out', join(dir, 'x.cache'), '--encoder', ENCODER]);
    assert.notEqual(e.code, 0);
    assert.match(e.stderr, /no images/);
  });

  it('writes percentile ranges for the QDQ encoder from a folder of class folders, and refuses an encoder already quantised', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'arpgnet-ranges-'));
    const faces = join(dir, 'faces');
    for (const c of ['angry', 'happy', 'surprise']) {
      mkdirSync(join(faces, c), { recursive: true });
      const src = join(SHARED, 'data', 'fer2013', 'val', c);
      for (const f of readdirSync(src).slice(0, 8)) cpSync(join(src, f), join(faces, c, f));
    }
    const ranges = join(dir, 'ranges.json');
    const args = ['models', 'calibrate', '--faces', faces, '--limit', '12', '--out', join(dir, 't.cache'), '--ranges', ranges];
    const r = await runCli([...args, '--encoder', ENCODER, '--providers', 'cpu']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal((JSON.parse(r.stdout) as { faces: number }).faces, 12, 'the limit, spread over the three classes');
    const doc = JSON.parse(readFileSync(ranges, 'utf8')) as { faces: number; percentile: number; ranges: Record<string, [number, number]> };
    assert.equal(doc.percentile, 99.99);
    // the input spans [-1, 1] after normalisation; the percentile keeps nearly all of it
    const [lo, hi] = doc.ranges['face']!;
    assert.ok(lo < -0.8 && lo >= -1.001 && hi > 0.8 && hi <= 1.001, `face range ${lo}..${hi}`);
    for (const [name, [a, b]] of Object.entries(doc.ranges))
      assert.ok(Number.isFinite(a) && Number.isFinite(b) && a <= b, `${name}: ${a}..${b}`);
    const q = await runCli([...args, '--encoder', join(ROOT, 'models', 'arpgnet-edge.encoder.int8.onnx')]);
    assert.notEqual(q.code, 0);
    assert.match(q.stderr, /already quantised.*calibrate the float encoder/);
  });
});
