import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import type { EvalReport, SampleRecord } from '../src/eval/evaluate.js';
import type { EvalResult } from '../src/eval/metrics.js';
import { runCli, SHARED } from './helpers.js';

const CK = join(SHARED, 'data', 'ckplus48');
const root = mkdtempSync(join(tmpdir(), 'arpgnet-eval-'));

type EvalJson = EvalResult;

function checkSane(j: EvalJson, n: number): void {
  assert.equal(j.n, n);
  for (const k of ['accuracy', 'uar', 'war'] as const) assert.ok(j[k] >= 0 && j[k] <= 1, `${k} = ${j[k]}`);
  assert.equal(j.confusion.length, j.labels.length);
  const counted = j.confusion.flat().reduce((a, b) => a + b, 0);
  assert.equal(counted + j.noFace, n, 'every sample is in the matrix or counted as no face');
}

describe('eval through the TypeScript pipeline (small CK+48 subset)', () => {
  before(() => {
    // sequences: each CK+48 sequence's frames, upscaled and padded so MediaPipe sees a whole head
    for (const cls of ['happy', 'surprise']) {
      const files = readdirSync(join(CK, cls)).sort().slice(0, 6);
      for (const f of files) {
        const seq = f.split('_').slice(0, 2).join('_');
        const dir = join(root, 'seq', cls, seq);
        mkdirSync(dir, { recursive: true });
        execFileSync('ffmpeg', [
          '-v',
          'error',
          '-y',
          '-i',
          join(CK, cls, f),
          '-vf',
          'scale=192:192,pad=384:384:96:96:color=gray',
          join(dir, f),
        ]);
      }
    }
    for (const cls of readdirSync(CK)) {
      mkdirSync(join(root, 'img', cls), { recursive: true });
      for (const f of readdirSync(join(CK, cls)).sort().slice(0, 2)) copyFileSync(join(CK, cls, f), join(root, 'img', cls, f));
    }
    mkdirSync(join(root, 'unknown', 'bored'), { recursive: true });
    mkdirSync(join(root, 'emptycls', 'sad'), { recursive: true });
    // bad input beside good: an unknown class, a one-frame sequence, a sequence with a broken frame
    const mixed = join(root, 'mixed');
    cpSync(join(root, 'seq', 'happy'), join(mixed, 'happy'), { recursive: true });
    mkdirSync(join(mixed, 'bored', 'S999_001'), { recursive: true });
    const first = readdirSync(join(mixed, 'happy'))[0]!;
    const frames = readdirSync(join(mixed, 'happy', first)).sort();
    mkdirSync(join(mixed, 'surprise', 'S998_001'), { recursive: true });
    copyFileSync(join(mixed, 'happy', first, frames[0]!), join(mixed, 'surprise', 'S998_001', frames[0]!));
    writeFileSync(join(mixed, 'happy', first, frames[1]!), 'not a png');
    // two more frames, so the sequence still has enough readable ones for a label
    for (const extra of ['zz1', 'zz2']) copyFileSync(join(mixed, 'happy', first, frames[2]!), join(mixed, 'happy', first, `${extra}.png`));
  });

  it('--format sequences --json prints the contract keys', async () => {
    const r = await runCli(['eval', '--data', join(root, 'seq'), '--format', 'sequences', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout) as EvalJson;
    const n = readdirSync(join(root, 'seq', 'happy')).length + readdirSync(join(root, 'seq', 'surprise')).length;
    checkSane(j, n);
    assert.ok(j.noFace < n, 'faces are found in upscaled CK+ frames');
  });

  it('--format images --aligned maps crops straight onto the model input', async () => {
    const r = await runCli(['eval', '--data', join(root, 'img'), '--format', 'images', '--aligned', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout) as EvalJson;
    checkSane(j, 14);
    assert.equal(j.noFace, 0, 'an aligned crop is always a face');
  });

  it('--actions writes each crop blendshapes with --samples; the actions branch moves only the readings of faces that have them', async () => {
    const read = (file: string): SampleRecord[] =>
      readFileSync(file, 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as SampleRecord);
    const noBranch = join(root, 'no-branch.json');
    writeFileSync(noBranch, JSON.stringify({ models: { actions: null } }));
    const files = { plain: join(root, 'plain.jsonl'), unfused: join(root, 'unfused.jsonl'), fused: join(root, 'fused.jsonl') };
    const base = ['eval', '--data', join(root, 'img'), '--format', 'images', '--aligned', '--json', '--samples'];
    for (const [run, extra] of [
      [files.plain, []],
      [files.unfused, ['--actions', '--config', noBranch]],
      [files.fused, ['--actions']],
    ] as const) {
      const r = await runCli([...base, run, ...extra]);
      assert.equal(r.code, 0, r.stderr);
    }
    const [plain, unfused, fused] = [read(files.plain), read(files.unfused), read(files.fused)];
    const readings = (xs: SampleRecord[]): unknown[] => xs.map((x) => [x.path, x.prediction, x.probabilities]);
    assert.deepEqual(readings(unfused), readings(plain), 'computing blendshapes alone changes no reading');
    assert.ok(
      plain.every((x) => !('actions' in x)),
      'without --actions no record carries them',
    );
    assert.ok(
      fused.every((x) => x.actions !== undefined),
      'a crop without a face says so (null), never drops the field',
    );
    const found = fused.filter((x) => x.actions);
    assert.ok(found.length >= fused.length / 2, `the landmarker finds most CK+48 crops (${found.length} of ${fused.length})`);
    let moved = 0;
    fused.forEach((x, i) => {
      const before = plain[i]!.probabilities!;
      const after = x.probabilities!;
      if (!x.actions) return assert.deepEqual(after, before, `${x.path}: no blendshapes, the head's reading stands`);
      const v = Object.values(x.actions);
      assert.equal(v.length, 51, 'MediaPipe gives 52 blendshapes, less _neutral');
      assert.ok(
        v.every((s) => s >= 0 && s <= 1),
        'coefficients are in 0..1',
      );
      // contempt is outside the branch's classes: its share is the head's
      assert.ok(Math.abs(after['contempt']! - before['contempt']!) <= 1e-4, `${x.path}: contempt kept its share`);
      const sum = Object.values(after).reduce((a, b) => a + b, 0);
      assert.ok(Math.abs(sum - 1) < 1e-3, `${x.path}: the fused reading sums to ${sum}`);
      if (Object.keys(after).some((k) => Math.abs(after[k]! - before[k]!) > 1e-3)) moved++;
    });
    assert.equal(moved, found.length, 'every face with blendshapes is read with them');
    const c = await runCli(['eval', '--data', join(root, 'seq'), '--format', 'sequences', '--actions']);
    assert.notEqual(c.code, 0);
    assert.match(c.stderr, /--actions is for --format images/);
  });

  it('the human-readable form shows the matrix and per-class recall', async () => {
    const r = await runCli(['eval', '--data', join(root, 'img'), '--format', 'images', '--aligned', '--limit', '1']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /accuracy +[\d.]+%/);
    assert.match(r.stdout, /recall/);
  });

  it('bad samples are named and counted while the rest is evaluated; --samples writes one line each', async () => {
    const lines = join(root, 'mixed.jsonl');
    const r = await runCli(['eval', '--data', join(root, 'mixed'), '--format', 'sequences', '--json', '--samples', lines]);
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout) as EvalReport;
    assert.equal(j.skipped.length, 1);
    assert.match(j.skipped[0]!.reason, /unknown class folder 'bored'/);
    assert.equal(j.failed, 1, 'the one-frame sequence cannot be labelled');
    assert.match(r.stderr, /S998_001: 1 frames; at 30 fps 1 are analysed, fewer than the 3 a label needs/);
    assert.match(r.stderr, /not a readable PNG image/, 'the broken frame is named');
    const records = readFileSync(lines, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as SampleRecord);
    assert.equal(records.length, j.n);
    const labelled = records.filter((x) => x.prediction);
    assert.ok(labelled.length >= j.n - 1 - j.noFace);
    for (const x of labelled) {
      assert.ok(x.frames && x.frames.length > 0, 'a labelled sequence lists its per-frame labels');
      const best = Object.entries(x.probabilities!).sort((a, b) => b[1] - a[1])[0]![0];
      assert.equal(x.prediction, best, 'the prediction is the most probable shown label');
    }
  });

  it('a folder with nothing to evaluate is refused, naming why', async () => {
    const a = await runCli(['eval', '--data', join(root, 'unknown'), '--format', 'images']);
    assert.notEqual(a.code, 0);
    assert.match(a.stderr, /bored: unknown class folder 'bored'/);
    const b = await runCli(['eval', '--data', join(root, 'emptycls'), '--format', 'sequences']);
    assert.notEqual(b.code, 0);
    assert.match(b.stderr, /sad: empty class folder/);
    const c = await runCli(['eval', '--data', join(root, 'img'), '--format', 'videos']);
    assert.match(c.stderr, /--format must be 'images' or 'sequences'/);
  });
});
