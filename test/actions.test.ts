import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { lastValueFrom, toArray } from 'rxjs';
import { sessionOptions } from '../src/config.js';
import { openSource } from '../src/ingest/source.js';
import { silentLogger } from '../src/log.js';
import { ActionsModel, fuseRow } from '../src/model/actions.js';
import { EmotionPipeline } from '../src/pipeline/emotion-pipeline.js';
import type { EmotionEvent } from '../src/publish/events.js';
import { testConfig, VIDEOS } from './helpers.js';

const cfg = testConfig();
const shipped = cfg.models.actions!;

describe('the facial-actions branch (blendshapes fused with the head)', () => {
  it('the shipped graph reads 51 blendshapes into terms for FER2013 classes the head has', async () => {
    const m = await ActionsModel.load(shipped, sessionOptions(cfg), silentLogger);
    try {
      assert.equal(m.names.length, 51);
      assert.ok(!m.names.includes('_neutral'));
      assert.deepEqual([...m.classes].sort(), ['anger', 'disgust', 'fear', 'happiness', 'neutral', 'sadness', 'surprise']);
      const labels = ['anger', 'disgust', 'fear', 'happiness', 'sadness', 'surprise', 'neutral', 'contempt'];
      assert.equal(m.indexIn(labels).length, 7);
      assert.throws(() => m.indexIn(labels.filter((l) => l !== 'fear')), /class 'fear' is not one of the head's labels/);
      const v = new Float32Array(2 * 51);
      const smile = Object.fromEntries(m.names.map((n) => [n, /Smile|cheekSquint/.test(n) ? 0.9 : 0.02]));
      const browsUp = Object.fromEntries(m.names.map((n) => [n, /browInnerUp|browOuterUp|eyeWide|jawOpen/.test(n) ? 0.9 : 0.02]));
      assert.equal(m.vector(smile, v, 0), null);
      assert.equal(m.vector(browsUp, v, 51), null);
      const t = await m.terms(v, 2);
      assert.equal(t.length, 14);
      const argmax = (row: Float32Array): string => m.classes[row.indexOf(Math.max(...row))]!;
      // what the blendshapes mean, learned from FER2013 faces: a broad smile is happiness, raised brows and an open jaw surprise
      assert.equal(argmax(t.subarray(0, 7)), 'happiness');
      assert.equal(argmax(t.subarray(7, 14)), 'surprise');
    } finally {
      await m.release();
    }
  });

  it('a blendshape vector that cannot be used is named, not filled in', async () => {
    const m = await ActionsModel.load(shipped, sessionOptions(cfg), silentLogger);
    try {
      const full = Object.fromEntries(m.names.map((n) => [n, 0.1]));
      const v = new Float32Array(51);
      const missing = Object.fromEntries(Object.entries(full).filter(([k]) => k !== 'mouthSmileLeft'));
      assert.match(m.vector(missing, v, 0)!, /blendshape 'mouthSmileLeft' missing/);
      assert.match(m.vector({ ...full, jawOpen: Number.NaN }, v, 0)!, /blendshape 'jawOpen' is NaN, outside 0..1/);
      assert.match(m.vector({ ...full, jawOpen: 1.5 }, v, 0)!, /outside 0..1/);
    } finally {
      await m.release();
    }
  });

  it('a file that is not an actions model is refused, naming it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'arpgnet-actions-'));
    const junk = join(dir, 'junk.onnx');
    writeFileSync(junk, Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]));
    await assert.rejects(ActionsModel.load(junk, sessionOptions(cfg), silentLogger), /junk\.onnx is not an ONNX file/);
    await assert.rejects(ActionsModel.load(cfg.models.head, sessionOptions(cfg), silentLogger), /head\.onnx: no arpgnet.actions/);
    await assert.rejects(
      ActionsModel.load(join(dir, 'none.onnx'), sessionOptions(cfg), silentLogger),
      /actions model not readable at .*none\.onnx: ENOENT/,
    );
  });

  it('fusion moves only the classes it has terms for, inside the share they had', () => {
    const p = Float32Array.from([0.1, 0.05, 0.1, 0.3, 0.1, 0.05, 0.1, 0.2]);
    const idx = [0, 1, 2, 3, 4, 5, 6];
    const same = Float32Array.from(p);
    fuseRow(same, idx, new Float32Array(7).fill(0.7));
    same.forEach((v, i) => assert.ok(Math.abs(v - p[i]!) < 1e-6, 'equal terms change nothing'));
    const q = Float32Array.from(p);
    fuseRow(q, idx, Float32Array.from([0, 0, 2, 0, 0, 0, 0]));
    assert.ok(Math.abs(q[7]! - 0.2) < 1e-7, 'contempt keeps its share');
    assert.ok(Math.abs(q.reduce((a, b) => a + b, 0) - 1) < 1e-6);
    assert.ok(q[2]! > 3 * p[2]!, `a class the blendshapes back gains (${p[2]} -> ${q[2]})`);
    assert.ok(q[3]! < p[3]!);
  });

  it('on a real clip the windows are read with the branch only while blendshapes are computed, and both are counted', async () => {
    const counts = async (actions: boolean): Promise<{ fused: number; without: number; unusable: number; labels: number }> => {
      const pipeline = await EmotionPipeline.create(testConfig({ actions, fps: 10 }), silentLogger);
      try {
        const source = await openSource(join(VIDEOS, 'd18.mp4'), { maxSide: 640, sequenceFps: 30, realtime: false }, 'd18');
        const run = await pipeline.analyse(source);
        const events = await lastValueFrom(run.events$.pipe(toArray()));
        const labels = events.filter((e): e is EmotionEvent => e.type === 'emotion').length;
        const end = events.at(-1);
        assert.ok(end?.type === 'stream_end');
        assert.equal(end.stats.actionsFused, run.state.actionsFusion.fused, 'stream_end counts the fused windows');
        return { ...run.state.actionsFusion, labels };
      } finally {
        await pipeline.close();
      }
    };
    const on = await counts(true);
    const off = await counts(false);
    assert.ok(on.labels > 10 && off.labels > 10);
    assert.equal(on.unusable, 0);
    assert.ok(on.fused >= on.labels * 0.9, `with blendshapes nearly every window is fused (${on.fused} of ${on.labels})`);
    assert.equal(off.fused, 0, 'YuNet alone computes no blendshapes: nothing is fused');
    assert.equal(off.without, off.labels, 'and every window is counted as read without them');
  });
});
