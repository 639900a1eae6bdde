import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadConfig } from '../src/config.js';
import { expectedCalibrationError, summarise } from '../src/eval/metrics.js';
import { FramePool } from '../src/ingest/frame-pool.js';
import { labelIndex } from '../src/model/labels.js';
import { cropToInput, templateToFrame, warpToTensor } from '../src/pipeline/align.js';
import { Labeller, shownLabels, UNCERTAIN } from '../src/pipeline/labeller.js';
import { RateSampler } from '../src/pipeline/sampler.js';
import { iou } from '../src/pipeline/faces/face.js';
import { FaceTracker } from '../src/pipeline/tracker.js';
import { EmbeddingWindow } from '../src/pipeline/window.js';
import { FrameCopies } from '../src/pipeline/stream.js';
import type { Frame } from '../src/ingest/frame.js';
import type { Preprocess } from '../src/model/metadata.js';
import type { DetectedFace } from '../src/pipeline/faces/face.js';

const template: Array<[number, number]> = [
  [14.5, 18.55],
  [32.5, 18.55],
  [23.5, 28.85],
  [16.2, 36.95],
  [30.8, 36.95],
];

describe('alignment', () => {
  it('recovers a known similarity from the five points', () => {
    const [a, b, tx, ty] = [2 * Math.cos(0.3), 2 * Math.sin(0.3), 100, 50];
    const pts = template.map(([u, v]) => [a * u - b * v + tx, b * u + a * v + ty] as [number, number]);
    const s = templateToFrame(pts, template);
    for (const [k, want] of Object.entries({ a, b, tx, ty })) assert.ok(Math.abs(s[k as 'a'] - want) < 1e-9, k);
  });
  it('maps a square crop onto the input with pixel centres aligned', () => {
    const s = cropToInput(96, 96, 48, 48);
    assert.equal(s.a, 2);
    assert.equal(s.tx, 0.5);
    assert.throws(() => cropToInput(96, 80, 48, 48), /square/);
  });
  it('writes the mirror image when asked: each row reversed, nothing else changed', () => {
    const pre: Preprocess = {
      version: 1,
      inputSize: { width: 8, height: 8 },
      colour: 'grey',
      lumaWeights: [0.299, 0.587, 0.114],
      mean: 0.5,
      std: 0.5,
      interpolation: 'bilinear',
      border: 'replicate',
      template,
      templatePoints: ['a', 'b', 'c', 'd', 'e'],
    };
    const data = Uint8Array.from({ length: 16 * 16 * 4 }, (_, i) => (i * 37) % 251);
    const frame = { data, width: 16, height: 16 };
    const sim = cropToInput(16, 16, 8, 8);
    const [plain, mirrored] = [new Float32Array(64), new Float32Array(64)];
    warpToTensor(frame, sim, pre, plain, 0);
    warpToTensor(frame, sim, pre, mirrored, 0, true);
    for (let y = 0; y < 8; y++) for (let x = 0; x < 8; x++) assert.equal(mirrored[y * 8 + x], plain[y * 8 + 7 - x]);
    assert.notDeepEqual(mirrored, plain);
  });
});

const face = (x: number, y: number, w = 0.2): DetectedFace => ({
  box: { x, y, w, h: w },
  points: [
    [0, 0],
    [0, 0],
    [0, 0],
    [0, 0],
    [0, 0],
  ],
});

describe('face tracker', () => {
  it('keeps ids through motion and short misses, retires them after maxMissMs', () => {
    const t = new FaceTracker({ maxMissMs: 300, minIou: 0.2 });
    const a = t.update([face(0.1, 0.1), face(0.6, 0.6)], 0);
    assert.deepEqual(
      a.entered.map((x) => x.id),
      ['f1', 'f2'],
    );
    const b = t.update([face(0.62, 0.61), face(0.12, 0.1)], 100); // order swapped, moved a little
    assert.deepEqual(b.seen.map((x) => x.id).sort(), ['f1', 'f2']);
    assert.equal(b.entered.length, 0);
    const c = t.update([face(0.12, 0.1)], 200); // f2 missed once: still alive
    assert.equal(c.left.length, 0);
    const d = t.update([face(0.12, 0.1)], 600);
    assert.deepEqual(
      d.left.map((x) => x.id),
      ['f2'],
    );
    assert.equal(iou(face(0, 0).box, face(0.5, 0.5).box), 0);
  });
});

describe('embedding window', () => {
  it('returns frames oldest first and masks empty slots while filling', () => {
    const w = new EmbeddingWindow(4, 1, 1);
    for (let i = 1; i <= 2; i++) w.push(Float32Array.of(i), Float32Array.of(-i), i * 100);
    const app = new Float32Array(8);
    const rel = new Float32Array(8);
    const valid = new Float32Array(8);
    w.writeTo(app, rel, valid, 1);
    assert.deepEqual([...valid.subarray(4)], [0, 0, 1, 1]);
    assert.deepEqual([...app.subarray(4)], [0, 0, 1, 2]);
    for (let i = 3; i <= 6; i++) w.push(Float32Array.of(i), Float32Array.of(-i), i * 100);
    w.writeTo(app, rel, valid, 0);
    assert.deepEqual([...app.subarray(0, 4)], [3, 4, 5, 6]);
    assert.deepEqual([...rel.subarray(0, 4)], [-3, -4, -5, -6]);
    assert.equal(w.spanMs, 300);
  });
  it('is due every stride frames once minFrames are in', () => {
    const w = new EmbeddingWindow(8, 1, 1);
    const due: number[] = [];
    for (let i = 0; i < 8; i++) {
      w.push(Float32Array.of(i), Float32Array.of(i), i);
      if (w.due(2, 3)) {
        due.push(i);
        w.writeTo(new Float32Array(8), new Float32Array(8), new Float32Array(8), 0);
      }
    }
    assert.deepEqual(due, [2, 4, 6]);
  });
});

describe('rate sampler', () => {
  it('keeps 10 of 30 frames per second and never duplicates', () => {
    const s = new RateSampler(10);
    const kept = Array.from({ length: 30 }, (_, i) => (i * 1000) / 30).filter((ts) => s.keep(ts));
    assert.equal(kept.length, 10);
  });
  it('keeps every frame of a slower source', () => {
    const s = new RateSampler(10);
    assert.equal([0, 200, 400, 600].filter((ts) => s.keep(ts)).length, 4);
  });
});

describe('frame pool', () => {
  it('drop-oldest keeps only the newest frame for a slow consumer and counts drops', async () => {
    const p = new FramePool(4, 'drop-oldest');
    for (let i = 0; i < 5; i++) {
      const b = p.acquire()!;
      p.push({ data: b, width: 1, height: 1, ts: i, index: i, arrivedAt: 0 }, b);
    }
    const got = await p.next();
    assert.equal(got?.frame.index, 4);
    assert.equal(p.dropped, 4);
  });
  it('block policy refuses a buffer instead of dropping', () => {
    const p = new FramePool(4, 'block');
    let n = 0;
    while (p.acquire()) n++;
    assert.equal(n, 5);
    assert.equal(p.dropped, 0);
  });
});

describe('frame copies for the analysis', () => {
  const frame = (index: number): Frame => ({
    data: new Uint8Array(16).fill(index),
    width: 2,
    height: 2,
    ts: index * 33,
    index,
    arrivedAt: 0,
  });
  it('a frame still being analysed keeps its pixels while later frames are sampled out', () => {
    const copies = new FrameCopies();
    const kept = copies.hold(frame(0));
    // 10 fps from 30: the next two are left out (done at once), the third is analysed
    for (const i of [1, 2]) copies.release(copies.hold(frame(i)));
    const next = copies.hold(frame(3));
    assert.ok(
      kept.data.every((v) => v === 0),
      'frame 0 overwritten by a later frame',
    );
    assert.ok(next.data.every((v) => v === 3));
    copies.release(kept);
    copies.release(next);
    assert.ok(copies.allocated <= 3, `${copies.allocated} buffers for at most two frames in flight`);
  });
  it('a frame released twice is lent to one later frame only', () => {
    const copies = new FrameCopies();
    const a = copies.hold(frame(1));
    copies.release(a);
    copies.release(a);
    const b = copies.hold(frame(2));
    const c = copies.hold(frame(3));
    assert.notEqual(b.data, c.data);
  });
});

describe('config', () => {
  it('layers file, environment and flags, and rejects bad values with the path named', () => {
    const c = loadConfig(undefined, { analysis: { fps: 5 } }, { ARPGNET_THREADS: '3', ARPGNET_PROVIDERS: 'cuda,cpu' });
    assert.equal(c.analysis.fps, 5);
    assert.equal(c.runtime.threads, 3);
    assert.deepEqual(c.runtime.providers, ['cuda', 'cpu']);
    assert.throws(() => loadConfig(undefined, { analysis: { fps: -1 } }, {}), /analysis\.fps/);
    assert.throws(() => loadConfig(undefined, {}, { ARPGNET_PROVIDERS: 'tpu' }), /runtime\.providers/);
    assert.throws(() => loadConfig('/nonexistent.json', {}, {}), /config file .*ENOENT/);
  });
});

describe('labels and metrics', () => {
  it('maps dataset folder synonyms and refuses unknown classes by name', () => {
    const labels = ['anger', 'happiness', 'neutral'];
    assert.equal(labelIndex('Happy', labels), 1);
    assert.equal(labelIndex('angry', labels), 0);
    assert.match(String(labelIndex('bored', labels)), /unknown class folder 'bored'/);
    assert.match(String(labelIndex('contempt', labels)), /not among the model's labels/);
  });
  it('counts no-face samples as wrong and computes UAR over present classes', () => {
    const r = summarise([0, 0, 1, 1], [0, -1, 1, 0], ['a', 'b', 'c']);
    assert.equal(r.accuracy, 0.5);
    assert.equal(r.noFace, 1);
    assert.equal(r.uar, 0.5);
    assert.equal(r.recall['c'], null);
    assert.deepEqual(r.confusion[1], [1, 1, 0]);
  });
});

describe('still views', () => {
  it('the identity view leaves the alignment alone; a view composes about the input centre', async () => {
    const { withView } = await import('../src/pipeline/align.js');
    const base = { a: 2, b: 0.5, tx: 10, ty: 20 };
    assert.deepEqual(withView(base, [0, 1, 0, 0], 48, 48), base);
    // a 1-pixel shift right in input space moves the sample point by base's (a, b)
    const s = withView(base, [0, 1, 1, 0], 48, 48);
    assert.ok(Math.abs(s.tx - 12) < 1e-9 && Math.abs(s.ty - 20.5) < 1e-9);
    // the centre pixel is fixed under rotation + scale
    const r = withView({ a: 1, b: 0, tx: 0, ty: 0 }, [30, 1.2, 0, 0], 48, 48);
    const c = 23.5;
    assert.ok(Math.abs(r.a * c - r.b * c + r.tx - c) < 1e-9 && Math.abs(r.b * c + r.a * c + r.ty - c) < 1e-9);
  });
});

describe('labeller: what a person is shown', () => {
  const labels = ['anger', 'happiness', 'neutral', 'contempt'];
  const policy = { shown: shownLabels(labels, ['contempt']), minConfidence: 0.4, hold: 2, margin: 0, smoothing: 1 };
  const p = (...v: number[]): Float32Array => Float32Array.from(v);

  it('never shows a hidden label, and a face it would win is uncertain, not its runner-up', () => {
    const l = new Labeller(labels, policy);
    const r = l.update(p(0.05, 0.15, 0.1, 0.7));
    assert.equal(r.label, UNCERTAIN);
    assert.equal(r.top, 'happiness');
    assert.ok(Math.abs(r.confidence - 0.15) < 1e-6);
  });
  it('shows uncertain below the threshold and the label above it', () => {
    const l = new Labeller(labels, { ...policy, hold: 1 });
    assert.equal(l.update(p(0.35, 0.3, 0.35, 0)).label, UNCERTAIN);
    assert.equal(l.update(p(0.1, 0.8, 0.1, 0)).label, 'happiness');
  });
  it('switches only after a new label led for `hold` windows', () => {
    const l = new Labeller(labels, policy);
    assert.equal(l.update(p(0.1, 0.8, 0.1, 0)).label, 'happiness');
    assert.equal(l.update(p(0.8, 0.1, 0.1, 0)).label, 'happiness', 'one window is not enough');
    assert.equal(l.update(p(0.1, 0.8, 0.1, 0)).label, 'happiness');
    assert.equal(l.update(p(0.8, 0.1, 0.1, 0)).label, 'happiness', 'the streak restarted');
    assert.equal(l.update(p(0.8, 0.1, 0.1, 0)).label, 'anger');
  });
  it('keeps the shown label while it trails the best by less than the margin', () => {
    const l = new Labeller(labels, { ...policy, hold: 1, margin: 0.15 });
    assert.equal(l.update(p(0.3, 0.6, 0.1, 0)).label, 'happiness');
    assert.equal(l.update(p(0.5, 0.4, 0.1, 0)).label, 'happiness', '0.1 behind: kept');
    assert.equal(l.update(p(0.7, 0.2, 0.1, 0)).label, 'anger', '0.5 behind: replaced');
    assert.equal(l.update(p(0.3, 0.3, 0.3, 0.1)).label, 'anger', 'just below the threshold, within the margin');
    assert.equal(l.update(p(0.2, 0.3, 0.3, 0.2)).label, UNCERTAIN);
  });
  it('weighs each class against the onset: an expression that was not there at the onset stands out sooner', () => {
    const onset = { ...policy, hold: 1, onset: { windows: 1, strength: 0.5 } };
    const rest = p(0.15, 0.05, 0.8, 0);
    const beginning = p(0.12, 0.42, 0.46, 0);
    const without = new Labeller(labels, { ...policy, hold: 1 });
    without.update(rest);
    assert.equal(without.update(beginning).label, 'neutral', 'without the reference the smile is still behind');
    const withRef = new Labeller(labels, onset);
    assert.equal(withRef.update(rest).label, 'neutral');
    const r = withRef.update(beginning);
    assert.equal(r.label, 'happiness', 'against a neutral onset the smile is the change');
    assert.deepEqual([...r.probs], [...beginning], "the reading's probabilities stay the model's");
    assert.ok(Math.abs(r.confidence - 0.42) < 1e-6, "its confidence is the label's calibrated probability");
  });
  it('still shows an expression held from the onset on, and starts a new reference after reset', () => {
    const l = new Labeller(labels, { ...policy, hold: 1, onset: { windows: 2, strength: 0.4 } });
    const smile = p(0.05, 0.8, 0.15, 0);
    assert.equal(l.update(smile).label, 'happiness');
    assert.equal(l.update(smile).label, 'happiness');
    assert.equal(l.update(smile).label, 'happiness', 'strength below 1 keeps a clear, constant expression');
    l.reset();
    assert.equal(l.update(p(0.1, 0.1, 0.8, 0)).label, 'neutral');
    assert.equal(l.update(p(0.1, 0.1, 0.8, 0)).label, 'neutral');
    assert.equal(l.update(smile).label, 'happiness', 'the new onset was neutral, so the smile stands out');
    // calibrate: the face at rest now is the new reference, the shown label stays until it changes
    l.restartOnset();
    assert.equal(l.update(smile).label, 'happiness');
    const again = l.update(p(0.1, 0.45, 0.45, 0));
    assert.equal(again.top, 'neutral', 'against a smiling reference an even reading leans to neutral');
    assert.throws(() => new Labeller(labels, { ...policy, onset: { windows: 0, strength: 0.4 } }), /onset needs windows >= 1/);
    assert.throws(() => new Labeller(labels, { ...policy, onset: { windows: 1, strength: 2 } }), /strength in 0..1/);
  });
  it('refuses a hidden name that is no emotion, and ignores one the model lacks', () => {
    assert.throws(() => shownLabels(labels, ['contemp']), /unknown label contemp/);
    assert.deepEqual(shownLabels(['anger', 'neutral'], ['contempt']), [true, true]);
  });
});

describe('expected calibration error', () => {
  it('is 0 when confidence matches accuracy and grows with overconfidence', () => {
    const half = [
      [0.5, 0.5],
      [0.5, 0.5],
    ];
    assert.ok(expectedCalibrationError(half, [0, 1]) < 1e-9);
    assert.ok(
      Math.abs(
        expectedCalibrationError(
          [
            [0.9, 0.1],
            [0.9, 0.1],
          ],
          [0, 1],
        ) - 0.4,
      ) < 1e-9,
    );
  });
});
