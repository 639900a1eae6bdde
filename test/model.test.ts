import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { silentLogger } from '../src/log.js';
import { Arpgnet } from '../src/model/arpgnet.js';
import { readOnnxMetadata } from '../src/model/onnx-metadata.js';
import { openSession, providerEntry } from '../src/model/session.js';
import { ROOT } from './helpers.js';

const files = { encoder: join(ROOT, 'models/arpgnet-edge.encoder.onnx'), head: join(ROOT, 'models/arpgnet-edge.head.onnx') };

describe('shipped model', () => {
  it('is small and carries the preprocessing contract in its metadata', async () => {
    const mb = (statSync(files.encoder).size + statSync(files.head).size) / 1e6;
    assert.ok(mb <= 15, `encoder + head are ${mb.toFixed(1)} MB`);
    const contract = JSON.parse(readFileSync(join(ROOT, 'models/preprocess.json'), 'utf8')) as unknown;
    for (const f of [files.encoder, files.head]) {
      const meta = readOnnxMetadata(readFileSync(f));
      assert.deepEqual(JSON.parse(meta['arpgnet.preprocess']!), contract, `${f} was exported with another contract`);
    }
    const m = await Arpgnet.load(files, { providers: ['cpu'], intraOpThreads: 1 }, silentLogger);
    assert.equal(m.window, 8);
    assert.deepEqual(m.labels.slice(0, 7), ['anger', 'disgust', 'fear', 'happiness', 'sadness', 'surprise', 'neutral']);
    const e = await m.encode(new Float32Array(2 * 48 * 48), 2);
    assert.equal(e.app.length, 2 * m.appDim);
    const p = await m.classify(new Float32Array(8 * m.appDim), new Float32Array(8 * m.relDim), new Float32Array(8).fill(1), 1);
    assert.ok(Math.abs(p.reduce((a, b) => a + b, 0) - 1) < 1e-5);
    await m.release();
  });

  it('a non-ONNX file is refused by the metadata reader', () => {
    assert.throws(() => readOnnxMetadata(new Uint8Array([0xff, 0xff, 0xff])));
  });
});

describe('execution providers (mock of a GPU-less host: the real TensorRT/CUDA libraries are absent here)', () => {
  it('falls back tensorrt -> cuda -> cpu, names each reason, and passes TensorRT options on', async () => {
    const bytes = readFileSync(files.head);
    for (const k of [
      'ORT_TENSORRT_FP16_ENABLE',
      'ORT_TENSORRT_ENGINE_CACHE_ENABLE',
      'ORT_TENSORRT_CACHE_PATH',
      'ORT_TENSORRT_MAX_WORKSPACE_SIZE',
    ])
      delete process.env[k];
    const warnings: unknown[] = [];
    const log = { ...silentLogger, warn: (o: unknown) => warnings.push(o), info: () => {} } as unknown as typeof silentLogger;
    const s = await openSession(
      bytes,
      'head',
      {
        providers: ['tensorrt', 'cuda', 'cpu'],
        intraOpThreads: 1,
        tensorrt: { fp16: true, engineCachePath: '/var/cache/trt', workspaceMb: 512 },
      },
      log,
    );
    assert.equal(s.provider, 'cpu');
    assert.deepEqual(
      s.skipped.map((x) => x.provider),
      ['tensorrt', 'cuda'],
    );
    assert.ok(s.skipped.every((x) => x.reason.length > 0));
    assert.equal(warnings.length, 1, 'the fallback is logged once');
    assert.equal(process.env['ORT_TENSORRT_FP16_ENABLE'], '1');
    assert.equal(process.env['ORT_TENSORRT_ENGINE_CACHE_ENABLE'], '1');
    assert.equal(process.env['ORT_TENSORRT_CACHE_PATH'], '/var/cache/trt');
    assert.equal(process.env['ORT_TENSORRT_MAX_WORKSPACE_SIZE'], String(512 * 1024 * 1024));
    await s.session.release();
  });

  it('hands the trt_* options to a patched binding in the provider entry', () => {
    const e = providerEntry('tensorrt', {
      providers: ['tensorrt'],
      intraOpThreads: 1,
      tensorrt: { fp16: false, engineCachePath: '/c', workspaceMb: 1, int8CalibrationTable: 'calib.cache' },
    });
    assert.deepEqual(e, {
      name: 'tensorrt',
      deviceId: 0,
      trt_fp16_enable: '0',
      trt_engine_cache_enable: '1',
      trt_engine_cache_path: '/c',
      trt_max_workspace_size: '1048576',
      trt_int8_enable: '1',
      trt_int8_calibration_table_name: 'calib.cache',
      trt_int8_use_native_calibration_table: '1',
    });
    assert.equal(providerEntry('cpu', { providers: ['cpu'], intraOpThreads: 1 }), 'cpu');
  });

  it('with no usable provider the error lists every reason', async () => {
    await assert.rejects(
      openSession(readFileSync(files.head), 'head', { providers: ['cuda'], intraOpThreads: 1 }, silentLogger),
      /head: no execution provider could open the model: cuda: /,
    );
  });
});
