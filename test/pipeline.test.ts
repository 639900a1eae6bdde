import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { toV2, type EmotionEvent } from '../src/publish/events.js';
import { assertSchema, assertSchemaV2, cachedClip, parseJsonl, runCli, VIDEOS } from './helpers.js';

describe('run on real clips (ffmpeg, MediaPipe, the shipped ONNX model)', () => {
  for (const [clip, detector] of [
    ['d18.mp4', 'yunet'],
    ['s18.mp4', 'mediapipe'],
  ] as const) {
    it(`${clip}, detector ${detector}: schema-valid events, one stable face track, T-frame windows`, async () => {
      const r = await runCli(['run', '--input', join(VIDEOS, clip), '--events', '-', '--fps', '10', '--detector', detector]);
      assert.equal(r.code, 0, r.stderr);
      const events = parseJsonl(r.stdout);
      events.forEach(assertSchema);
      assert.equal(events[0]!.type, 'stream_start');
      assert.equal(events.at(-1)!.type, 'stream_end');
      const enters = events.filter((e) => e.type === 'face_enter');
      assert.equal(enters.length, 1, 'one person in the clip: one track for the whole clip');
      const emotions = events.filter((e): e is EmotionEvent => e.type === 'emotion');
      assert.ok(emotions.length >= 10, `only ${emotions.length} emotion events`);
      assert.ok(emotions.every((e) => e.track === enters[0]!.track));
      const start = events[0]!;
      const t = start.type === 'stream_start' ? start.model.window : 0;
      assert.ok(emotions.every((e) => e.window.frames >= 1 && e.window.frames <= t));
      assert.ok(emotions.filter((e) => e.window.frames === t).length > emotions.length / 2, 'most windows are full');
      for (const e of emotions) {
        // hidden labels (contempt) keep their probability but are not offered as scores
        const sum = Object.values(e.scores).reduce((a, b) => a + b, 0);
        assert.ok(sum <= 1.001 && !('contempt' in e.scores), `scores sum to ${sum}: ${JSON.stringify(e.scores)}`);
        assert.notEqual(e.label, 'contempt');
        if (e.label !== 'uncertain') assert.ok(e.label in e.scores);
      }
      const end = events.at(-1)!;
      assert.ok(end.type === 'stream_end' && end.reason === 'eof' && end.stats.analysed > 0 && end.stats.emotions === emotions.length);
      // schema v2: how good a view each reading came from
      for (const e of emotions) {
        assert.ok(e.quality.faceSizePx > 20, `face of ${e.quality.faceSizePx} px`);
        if (detector === 'mediapipe') assert.ok(e.quality.yaw !== null && Math.abs(e.quality.yaw) < 60, `yaw ${e.quality.yaw}`);
        // YuNet gives five points and its confidence, the pose read from those points; MediaPipe its mesh's pose
        else assert.ok(e.quality.yaw !== null && e.quality.detection !== null && e.quality.detection >= 0.6, JSON.stringify(e.quality));
        assert.equal(e.actions, undefined, 'facial actions only when asked for');
      }
      // schema v3: valence, arousal and attention on every reading, from either detector
      for (const e of emotions) {
        assert.ok(Math.abs(e.valence) <= 1 && Math.abs(e.arousal) <= 1);
        assert.equal(e.attention.from, detector === 'mediapipe' ? 'mesh' : 'points');
        assert.equal(typeof e.attention.looking, 'boolean');
        assert.equal(e.attention.yaw, e.quality.yaw);
        assert.equal(e.baseline, undefined, 'a personal baseline only when asked for');
      }
      // a talking head facing the camera looks at the screen most of the time
      assert.ok(emotions.filter((e) => e.attention.looking).length > emotions.length * 0.8, 'mostly looking');
      // the face's last summary, as it left with the stream: its label times add up to its analysed time
      const sums = events.filter((e) => e.type === 'summary');
      assert.equal(sums.length, 1, 'no periodic summaries by default: one, as the face left');
      const sum = sums[0]!;
      assert.ok(sum.type === 'summary' && sum.scope === 'face' && sum.final && sum.track === enters[0]!.track);
      assert.equal(
        Object.values(sum.labelMs).reduce((a, b) => a + b, 0),
        sum.analysedMs,
      );
      assert.equal(sum.readings, emotions.length);
      const span = emotions.at(-1)!.ts - emotions[0]!.ts;
      assert.ok(Math.abs(sum.analysedMs - span) <= 2, `analysed ${sum.analysedMs} ms of ${span} ms with readings`);
      const shown = new Map<string, number>();
      for (const [i, e] of emotions.entries()) if (i) shown.set(e.label, (shown.get(e.label) ?? 0) + e.ts - emotions[i - 1]!.ts);
      for (const [l, ms] of shown) assert.ok(Math.abs((sum.labelMs[l] ?? 0) - ms) <= 2, `${l}: ${sum.labelMs[l]} vs ${ms}`);
      const meanV = emotions.reduce((a, e) => a + e.valence, 0) / emotions.length;
      assert.ok(sum.valence !== null && Math.abs(sum.valence - meanV) < 0.15, `mean valence ${sum.valence} vs ${meanV}`);
      // a v2 subscriber still parses every event it is served (summaries are not served to it)
      for (const e of events) {
        const old = toV2(e);
        if (e.type === 'summary') assert.equal(old, null);
        else assertSchemaV2(old);
      }
    });
  }

  it('faces at kiosk distance (about 30 px high): found by the small-face detector, missed without it', async () => {
    // a real talking-head clip shrunk so the face is as small as a person 2-3 m from a kiosk camera
    const clip = cachedClip('d18-face-30px.mp4', [
      '-i',
      join(VIDEOS, 'd18.mp4'),
      '-t',
      '4',
      '-vf',
      'scale=44:44,pad=640:480:300:200:color=gray',
      '-c:v',
      'libx264',
      '-crf',
      '18',
      '-f',
      'mp4',
    ]);
    const off = join(mkdtempSync(join(tmpdir(), 'arpgnet-small-')), 'off.json');
    writeFileSync(off, JSON.stringify({ analysis: { detector: 'mediapipe', smallFaces: false } }));
    const without = parseJsonl((await runCli(['run', '--config', off, '--input', clip, '--events', '-'])).stdout);
    const endOff = without.at(-1)!;
    assert.ok(
      endOff.type === 'stream_end' && endOff.stats.analysed > 10 && endOff.stats.framesWithoutFace === endOff.stats.analysed,
      'MediaPipe alone finds no face',
    );
    const r = await runCli(['run', '--input', clip, '--events', '-']);
    assert.equal(r.code, 0, r.stderr);
    const events = parseJsonl(r.stdout);
    events.forEach(assertSchema);
    const emotions = events.filter((e): e is EmotionEvent => e.type === 'emotion');
    const end = events.at(-1)!;
    assert.ok(end.type === 'stream_end' && end.stats.framesWithoutFace <= end.stats.analysed / 10, 'a face in nearly every analysed frame');
    assert.ok(emotions.length >= 10, `${emotions.length} emotion events`);
    for (const e of emotions) {
      assert.ok(e.quality.faceSizePx >= 20 && e.quality.faceSizePx <= 45, `face of ${e.quality.faceSizePx} px`);
      assert.ok((e.quality.detection ?? 0) >= 0.6, 'the detector says how sure it was');
    }
    assert.equal(events.filter((e) => e.type === 'face_enter').length, 1, 'one track for the one person');
  });

  it('emit on change: an event when the shown label changes, else one per heartbeat', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'arpgnet-emit-'));
    const cfg = join(dir, 'change.json');
    writeFileSync(cfg, JSON.stringify({ analysis: { emit: { mode: 'change', heartbeatMs: 1500 }, actions: true } }));
    // facial actions come from MediaPipe, which then also finds the faces: the same in both runs
    const everyCfg = join(dir, 'every.json');
    writeFileSync(everyCfg, JSON.stringify({ analysis: { actions: true } }));
    const every = parseJsonl((await runCli(['run', '--config', everyCfg, '--input', join(VIDEOS, 'd19.mp4'), '--events', '-'])).stdout);
    const r = await runCli(['run', '--config', cfg, '--input', join(VIDEOS, 'd19.mp4'), '--events', '-']);
    assert.equal(r.code, 0, r.stderr);
    const all = every.filter((e): e is EmotionEvent => e.type === 'emotion');
    const changes = parseJsonl(r.stdout).filter((e): e is EmotionEvent => e.type === 'emotion');
    assert.ok(changes.length > 0 && changes.length < all.length / 2, `${changes.length} of ${all.length} windows`);
    for (let i = 1; i < changes.length; i++) {
      const [a, b] = [changes[i - 1]!, changes[i]!];
      assert.ok(a.label !== b.label || b.ts - a.ts >= 1500 - 1, `events ${i - 1},${i}: ${a.label}@${a.ts} ${b.label}@${b.ts}`);
    }
    // the shown labels in change mode are exactly the changes of the every-window stream
    const shown = (xs: EmotionEvent[]): string[] => xs.map((e) => e.label).filter((l, i, a) => i === 0 || l !== a[i - 1]);
    assert.deepEqual(shown(changes), shown(all));
    // actions asked for by the config: blendshape coefficients beside the label
    assert.ok(changes.every((e) => e.actions && Object.keys(e.actions).length >= 50 && (e.actions['jawOpen'] ?? -1) >= 0));
  });

  it("--report draws each face's emotion timeline as self-contained HTML", async () => {
    const out = join(mkdtempSync(join(tmpdir(), 'arpgnet-report-')), 'report.html');
    const r = await runCli(['run', '--input', join(VIDEOS, 'd11.mp4'), '--report', out]);
    assert.equal(r.code, 0, r.stderr);
    const html = readFileSync(out, 'utf8');
    assert.match(html, /<svg[^>]*aria-label="emotion probabilities of face f1"/);
    assert.ok((html.match(/<polyline/g) ?? []).length >= 7, 'one line per label');
    assert.doesNotMatch(html, /<script|https?:\/\/(?!arpgnet)/, 'no external resources');
  });
});
