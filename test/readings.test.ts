import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadConfig } from '../src/config.js';
import type { DetectedFace, FivePoints } from '../src/pipeline/faces/face.js';
import { selectFaces } from '../src/pipeline/faces/select.js';
import { affectOf, circumplex } from '../src/pipeline/readings/affect.js';
import { attentionOf } from '../src/pipeline/readings/attention.js';
import { FaceBaseline } from '../src/pipeline/readings/baseline.js';
import { poseFromPoints } from '../src/pipeline/readings/pose.js';
import { FaceSummary, Tally } from '../src/pipeline/readings/summary.js';
import { faceSummary, envelope } from '../src/publish/envelopes.js';
import { toV1, toV2 } from '../src/publish/events.js';

const LABELS = ['anger', 'disgust', 'fear', 'happiness', 'sadness', 'surprise', 'neutral', 'contempt'];
const SHOWN = LABELS.map((l) => l !== 'contempt');
const one = (label: string): number[] => LABELS.map((l) => (l === label ? 1 : 0));

describe('valence and arousal', () => {
  const pts = circumplex(LABELS);
  it('put happiness positive, sadness negative and low, fear and surprise aroused, neutral at the centre', () => {
    const h = affectOf(one('happiness'), pts, SHOWN);
    const s = affectOf(one('sadness'), pts, SHOWN);
    const f = affectOf(one('fear'), pts, SHOWN);
    const n = affectOf(one('neutral'), pts, SHOWN);
    assert.ok(h.valence > 0.9 && Math.abs(h.arousal) < 0.2);
    assert.ok(s.valence < -0.8 && s.arousal < -0.3);
    assert.ok(f.valence < 0 && f.arousal > 0.8);
    assert.ok(affectOf(one('surprise'), pts, SHOWN).arousal > 0.9);
    assert.deepEqual(n, { valence: 0, arousal: 0 });
  });
  it('stay in [-1, 1], and a hidden label moves them no more than it moves the label', () => {
    for (let i = 0; i < 200; i++) {
      const p = LABELS.map(() => Math.random());
      const a = affectOf(p, pts, SHOWN);
      assert.ok(Math.hypot(a.valence, a.arousal) <= 1 + 1e-9);
    }
    const withContempt = affectOf([0, 0, 0, 0.5, 0, 0, 0, 0.5], pts, SHOWN);
    assert.ok(Math.abs(withContempt.valence - affectOf(one('happiness'), pts, SHOWN).valence) < 1e-9);
  });
});

describe('head pose from the five points', () => {
  // a frontal face: eyes level, nose on the midline between eyes and mouth
  const frontal: FivePoints = [
    [40, 50],
    [60, 50],
    [50, 59],
    [42, 70],
    [58, 70],
  ];
  const shifted = (dx: number, dy: number): FivePoints => frontal.map((p, i) => (i === 2 ? [p[0] + dx, p[1] + dy] : p)) as FivePoints;
  it('reads a frontal face as near 0 and a nose off the midline as a turn towards it', () => {
    const f = poseFromPoints(frontal)!;
    assert.ok(Math.abs(f.yaw) < 1 && Math.abs(f.roll) < 1 && Math.abs(f.pitch) < 5, JSON.stringify(f));
    const right = poseFromPoints(shifted(6, 0))!;
    assert.ok(right.yaw > 15, `nose to the image's right is yaw > 0: ${right.yaw}`);
    assert.ok(poseFromPoints(shifted(-6, 0))!.yaw < -15);
    assert.ok(Math.abs(poseFromPoints(shifted(0, 6))!.pitch - f.pitch) > 5, 'the nose nearer the mouth changes pitch');
  });
  it('reads roll from the eye line whatever the rotation, and refuses degenerate points', () => {
    const a = (20 * Math.PI) / 180;
    const rot = frontal.map(([x, y]) => [
      50 + (x - 50) * Math.cos(a) - (y - 60) * Math.sin(a),
      60 + (x - 50) * Math.sin(a) + (y - 60) * Math.cos(a),
    ]) as FivePoints;
    const p = poseFromPoints(rot)!;
    assert.ok(Math.abs(p.roll - 20) < 0.2, `roll ${p.roll}`);
    assert.ok(Math.abs(p.yaw - poseFromPoints(frontal)!.yaw) < 0.2, 'rolling the head does not turn it');
    const same: FivePoints = [
      [5, 5],
      [5, 5],
      [5, 5],
      [5, 5],
      [5, 5],
    ];
    assert.equal(poseFromPoints(same), null);
  });
});

describe('attention', () => {
  const limits = { maxYaw: 30, maxPitch: 20 };
  it('is looking within the limits, away past either, unknown without a pose', () => {
    assert.equal(attentionOf({ yaw: 10, pitch: -5, roll: 0 }, 'points', limits).looking, true);
    assert.equal(attentionOf({ yaw: 40, pitch: 0, roll: 0 }, 'points', limits).looking, false);
    assert.equal(attentionOf({ yaw: 0, pitch: -25, roll: 0 }, 'mesh', limits).looking, false);
    assert.deepEqual(attentionOf(null, null, limits), { looking: null, yaw: null, pitch: null, from: null });
  });
});

describe('summaries', () => {
  it('label times add up to the analysed time, a gap is not analysed time, means are time-weighted', () => {
    const s = new FaceSummary(1000, 0);
    s.add(0, 'neutral', { valence: 0, arousal: 0 }, true);
    s.add(100, 'neutral', { valence: 0, arousal: 0 }, true);
    s.add(300, 'happiness', { valence: 1, arousal: 0.2 }, false);
    s.add(5300, 'happiness', { valence: 1, arousal: 0.2 }, true); // 5 s unseen: held 1 s at most
    const t = s.tally.summary();
    assert.equal(t.analysedMs, 100 + 200 + 1000);
    assert.deepEqual(t.labelMs, { neutral: 100, happiness: 1200 });
    assert.equal(t.readings, 4);
    assert.ok(Math.abs(t.valence! - 1200 / 1300) < 1e-9);
    assert.ok(Math.abs(t.attentive! - 1100 / 1300) < 1e-9);
  });
  it('round to whole ms and still add up; rooms merge faces', () => {
    const s = new FaceSummary(1000, 0);
    for (let i = 0; i < 30; i++) s.add(i * 33.3, i % 3 ? 'neutral' : 'uncertain', { valence: 0, arousal: 0 }, null);
    const e = faceSummary(envelope('s', 'r', 1000), 't1', 0, true, s.tally.summary());
    assert.equal(
      Object.values(e.labelMs).reduce((a, b) => a + b, 0),
      e.analysedMs,
    );
    assert.equal(e.attentive, null);
    const room = new Tally();
    room.merge(e);
    room.merge(e);
    assert.equal(room.summary().analysedMs, 2 * e.analysedMs);
  });
  it('are due every interval after the last one, never without an interval', () => {
    const s = new FaceSummary(1000, 0);
    s.add(0, 'neutral', { valence: 0, arousal: 0 }, true);
    assert.equal(s.due(4000, 5000), false);
    assert.equal(s.due(5000, 5000), true);
    assert.equal(s.due(1e9, null), false);
  });
  it('are not served to v2 and v1 readers, and v2 readers get emotion events without the v3 fields', () => {
    const e = faceSummary(envelope('s', 'r', 0), 't1', 0, false, new Tally().summary());
    assert.equal(toV2(e), null);
    assert.equal(toV1(e), null);
  });
});

describe('personal baseline', () => {
  it('collects over its first seconds, then reports the distance from that reference', () => {
    const b = new FaceBaseline(3, 2000);
    const sad = [0.1, 0.6, 0.3];
    assert.equal(b.update(0, sad, { valence: -0.4, arousal: 0 }).state, 'collecting');
    const set = b.update(2000, sad, { valence: -0.4, arousal: 0 });
    assert.equal(set.state, 'set');
    assert.ok(Math.abs(set.valence) < 1e-9, 'the resting face reads as 0 from its own reference');
    const later = b.update(3000, [0.7, 0.1, 0.2], { valence: 0.5, arousal: 0.1 });
    assert.ok(Math.abs(later.valence - 0.9) < 1e-9);
    assert.ok(Math.abs(later.probs[0]! - 0.6) < 1e-6);
    b.restart();
    assert.equal(b.update(4000, sad, { valence: -0.4, arousal: 0 }).state, 'collecting');
  });
});

describe('which faces count', () => {
  const f = (x: number, y: number, h: number): DetectedFace => ({
    box: { x, y, w: h, h },
    points: [
      [0, 0],
      [1, 0],
      [0.5, 0.5],
      [0, 1],
      [1, 1],
    ],
  });
  it('leaves out faces below the minimum height and counts them', () => {
    const left = { tooSmall: 0, overLimit: 0 };
    const kept = selectFaces([f(0.1, 0.1, 0.05), f(0.4, 0.4, 0.3)], 480, { pick: 'largest', minHeightPx: 40, maxFaces: 4 }, left);
    assert.equal(kept.length, 1);
    assert.equal(left.tooSmall, 1);
  });
  it('keeps the largest, or the one nearest the centre (kiosk), and counts the rest', () => {
    const big = f(0.0, 0.0, 0.4);
    const centre = f(0.45, 0.45, 0.1);
    const left = { tooSmall: 0, overLimit: 0 };
    assert.equal(selectFaces([centre, big], 480, { pick: 'largest', minHeightPx: 0, maxFaces: 1 }, left)[0], big);
    assert.equal(selectFaces([big, centre], 480, { pick: 'centre', minHeightPx: 0, maxFaces: 1 }, left)[0], centre);
    assert.equal(left.overLimit, 2);
  });
});

describe('reading settings', () => {
  it('refuse a summary interval of 0 or 10 hours, attention limits past 90 degrees and a webhook that is not http(s) or unsigned, naming the setting', () => {
    assert.throws(() => loadConfig(undefined, { analysis: { summaries: { everySeconds: 0 } } }, {}), /analysis\.summaries\.everySeconds/);
    assert.throws(
      () => loadConfig(undefined, { analysis: { summaries: { everySeconds: 36000 } } }, {}),
      /analysis\.summaries\.everySeconds/,
    );
    assert.throws(() => loadConfig(undefined, { analysis: { attention: { maxYaw: 120 } } }, {}), /analysis\.attention\.maxYaw/);
    assert.equal(loadConfig(undefined, { analysis: { summaries: { everySeconds: 10 } } }, {}).analysis.summaries.everySeconds, 10);
    const hook = (url: string, secret = `whsec_${Buffer.from('x'.repeat(32)).toString('base64')}`) => ({
      webhooks: { endpoints: [{ url, secret, events: ['summary'] }] },
    });
    assert.throws(() => loadConfig(undefined, hook('ftp://example.org/hook'), {}), /webhooks\.endpoints\.0\.url: a webhook URL is http/);
    assert.throws(() => loadConfig(undefined, hook('not a url'), {}), /webhooks\.endpoints\.0\.url/);
    assert.throws(
      () => loadConfig(undefined, hook('https://example.org/hook', 'secret'), {}),
      /webhooks\.endpoints\.0\.secret: a webhook secret is whsec_/,
    );
    assert.equal(loadConfig(undefined, hook('https://example.org/hook'), {}).webhooks.endpoints.length, 1);
  });
});
