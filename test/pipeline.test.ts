import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { EmotionEvent } from '../src/publish/events.js';
import { assertSchema, parseJsonl, runCli, VIDEOS } from './helpers.js';

describe('run on real clips (ffmpeg, MediaPipe, the shipped ONNX model)', () => {
  for (const clip of ['d18.mp4', 's18.mp4']) {
    it(`${clip}: schema-valid events, one stable face track, T-frame windows`, async () => {
      const r = await runCli(['run', '--input', join(VIDEOS, clip), '--events', '-', '--fps', '10']);
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
    });
  }

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
