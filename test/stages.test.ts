import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { from, lastValueFrom, toArray } from 'rxjs';
import { sessionOptions } from '../src/config.js';
import type { Frame } from '../src/ingest/frame.js';
import { silentLogger } from '../src/log.js';
import { ActionsModel } from '../src/model/actions.js';
import { Arpgnet } from '../src/model/arpgnet.js';
import { analyseFrames } from '../src/pipeline/analysis.js';
import type { DetectedFace, FaceFinder } from '../src/pipeline/faces/face.js';
import { shownLabels } from '../src/pipeline/labeller.js';
import { detect, found } from '../src/pipeline/stages/detect.js';
import { sample } from '../src/pipeline/stages/sample.js';
import { track } from '../src/pipeline/stages/track.js';
import { StreamState, type StreamStateOptions } from '../src/pipeline/stream-state.js';
import type { EmotionEvent, PipelineEvent } from '../src/publish/events.js';
import { assertSchema, testConfig } from './helpers.js';

/**
 * The stages one by one and composed (analysis.ts), on the shipped model with a face
 * finder that reports a face where the test puts one: what each stage adds, in order.
 */
const W = 320;
const H = 320;

/** A frame of textured grey (the encoder sees a face-sized patch of it). */
function frame(index: number, fps = 30): Frame {
  const data = new Uint8Array(W * H * 4);
  for (let i = 0; i < data.length; i += 4) {
    const v = (i * 2654435761 + index * 97) % 255;
    data[i] = data[i + 1] = data[i + 2] = v;
    data[i + 3] = 255;
  }
  return { data, width: W, height: H, ts: (index * 1000) / fps, index, arrivedAt: performance.now() };
}

/** A face in the middle of the frame with its five points where a frontal face has them. */
const FACE: DetectedFace = {
  box: { x: 0.25, y: 0.25, w: 0.5, h: 0.5 },
  points: [
    [130, 140],
    [190, 140],
    [160, 170],
    [138, 200],
    [182, 200],
  ],
  score: 0.9,
};

/** Faces on the frames `present` says, nothing on the others. */
const finder = (present: (f: Frame) => boolean): Pick<FaceFinder, 'detect'> => ({
  detect: (f) => (present(f as Frame) ? [FACE] : []),
});

describe('pipeline stages (the shipped model, faces placed by the test)', () => {
  let model: Arpgnet;
  const cfg = testConfig();
  before(async () => {
    model = await Arpgnet.load(cfg.models, sessionOptions(cfg), silentLogger);
  });
  after(() => model.release());

  const state = (faces: Pick<FaceFinder, 'detect'>, over: Partial<StreamStateOptions> = {}): StreamState =>
    new StreamState({
      stream: 's1',
      room: 'r1',
      model,
      faces,
      maxFaces: 2,
      stride: 1,
      minFrames: 3,
      policy: {
        shown: shownLabels(model.labels, ['contempt']),
        minConfidence: 0.35,
        hold: 5,
        margin: 0.25,
        smoothing: 0.4,
      },
      maxGapMs: 1000,
      trackMissMs: 200,
      pick: { pick: 'largest', minHeightPx: 0 },
      attention: { maxYaw: 30, maxPitch: 20 },
      summaryEveryMs: null,
      baselineMs: null,
      ...over,
    });

  const run = (s: StreamState, frames: Frame[], fps = 10, maxFailedFrames = Infinity): Promise<PipelineEvent[]> =>
    lastValueFrom(from(frames).pipe(analyseFrames(s, { fps, done: () => undefined, maxFailedFrames }), toArray()));

  it('sample: keeps the analysis rate by media time and tells of each frame left out', async () => {
    const skipped: number[] = [];
    const kept = await lastValueFrom(
      from(Array.from({ length: 30 }, (_, i) => frame(i))).pipe(
        sample(10, (f) => skipped.push(f.index)),
        toArray(),
      ),
    );
    assert.equal(kept.length, 10);
    assert.equal(skipped.length, 20);
    assert.deepEqual(
      kept.map((f) => f.index),
      [0, 3, 6, 9, 12, 15, 18, 21, 24, 27],
    );
  });

  it('detect + track: face_enter when a face appears, face_leave (lost) once it is gone longer than trackMissMs', async () => {
    const s = state(finder((f) => f.index < 3));
    const frames = Array.from({ length: 8 }, (_, i) => frame(i, 10));
    const out = await lastValueFrom(from(frames).pipe(detect(s), toArray()));
    const tracked = [];
    for (const d of out) tracked.push(await lastValueFrom(found(d).pipe(track(s))));
    const events = tracked.flatMap((t) => t.events);
    assert.deepEqual(
      events.map((e) => e.type),
      ['face_enter', 'face_leave'],
    );
    assert.equal(tracked[0]!.seen.length, 1);
    const left = events[1]!;
    assert.equal(left.type === 'face_leave' && left.reason, 'lost');
    // the face was last seen at 200 ms; gone for more than 200 ms by 500 ms at the latest
    assert.ok(events[1]!.ts > 200 && events[1]!.ts <= 500, `left at ${events[1]!.ts}`);
    assert.equal(s.framesWithoutFace, 5);
  });

  it('composed: face_enter first, then an emotion event per frame once minFrames are in, each valid v2 with a growing window', async () => {
    const s = state(finder(() => true));
    const events = await run(
      s,
      Array.from({ length: 8 }, (_, i) => frame(i, 10)),
    );
    events.forEach((e) => assertSchema(e));
    assert.equal(events[0]!.type, 'face_enter');
    const emotions = events.filter((e): e is EmotionEvent => e.type === 'emotion');
    // frames 0..7, first reading at the third frame
    assert.equal(emotions.length, 6);
    assert.deepEqual(
      emotions.map((e) => e.window.frames),
      [3, 4, 5, 6, 7, 8].map((n) => Math.min(n, model.window)),
    );
    for (const e of emotions) {
      assert.equal(e.room, 'r1');
      assert.equal(e.stream, 's1');
      assert.ok(!('contempt' in e.scores), 'a hidden label is not offered as a score');
      const sum = Object.values(e.scores).reduce((a, b) => a + b, 0);
      assert.ok(sum > 0 && sum <= 1.0001, `scores sum to ${sum}`);
      assert.equal(e.quality.faceSizePx, Math.round(FACE.box.h * H));
      assert.equal(e.quality.detection, 0.9);
    }
    const ts = events.map((e) => e.ts);
    ts.forEach((t, i) => i === 0 || assert.ok(t >= ts[i - 1]!, 'in frame order'));
    assert.equal(s.analysed, 8);
    assert.equal(s.emotions, 6);
  });

  it('label, emit change: a steady face gives its first label and then one per heartbeat, not one per window', async () => {
    const s = state(
      finder(() => true),
      { emit: { mode: 'change', heartbeatMs: 1000 } },
    );
    const events = await run(
      s,
      Array.from({ length: 30 }, (_, i) => frame(i, 10)),
    );
    const emotions = events.filter((e) => e.type === 'emotion');
    // 28 windows in 2.9 s: the first, plus label changes and heartbeats (at most ~1 per 1000 ms beyond changes)
    assert.ok(emotions.length >= 3 && emotions.length < 28, `${emotions.length} emotion events`);
  });

  it('analysis: a failing frame is a non-fatal error and the stream goes on; maxFailedFrames in a row end it', async () => {
    let n = 0;
    const flaky: Pick<FaceFinder, 'detect'> = {
      detect: () => {
        n++;
        if (n === 2) throw new Error('finder hiccup');
        return [FACE];
      },
    };
    const events = await run(
      state(flaky),
      Array.from({ length: 5 }, (_, i) => frame(i, 10)),
    );
    const errors = events.filter((e) => e.type === 'error');
    assert.equal(errors.length, 1);
    assert.ok(errors[0]!.type === 'error' && !errors[0]!.fatal && /frame 1: finder hiccup/.test(errors[0]!.message));
    assert.ok(
      events.some((e) => e.type === 'emotion'),
      'the stream went on',
    );

    const broken: Pick<FaceFinder, 'detect'> = {
      detect: () => {
        throw new Error('gone');
      },
    };
    await assert.rejects(
      run(
        state(broken),
        Array.from({ length: 5 }, (_, i) => frame(i, 10)),
        10,
        3,
      ),
      (e: Error & { code?: string }) => e.code === 'analysis_failed' && /3 frames in a row/.test(e.message),
    );
  });

  it('a frame with more faces than maxFaces keeps the largest and counts the rest', async () => {
    const small: DetectedFace = { ...FACE, box: { x: 0.05, y: 0.05, w: 0.1, h: 0.1 } };
    const s = state({ detect: () => [small, FACE, small] }, { maxFaces: 1 });
    await run(s, [frame(0, 10)]);
    assert.equal(s.leftOut.overLimit, 2);
    assert.equal(s.tracks, 1);
  });

  it('fuse: faces with blendshapes are read with the branch; an unusable vector is named once, counted, and the readings go on', async () => {
    const branch = await ActionsModel.load(cfg.models.actions!, sessionOptions(cfg), silentLogger);
    try {
      const good = Object.fromEntries(branch.names.map((n) => [n, 0.1]));
      const bad = Object.fromEntries(branch.names.filter((n) => n !== 'jawOpen').map((n) => [n, 0.1]));
      // frames 0-9 with usable blendshapes, 10-19 with one missing, 20-29 without any
      const faces: Pick<FaceFinder, 'detect'> = {
        detect: (f) => {
          const i = (f as Frame).index;
          return [{ ...FACE, ...(i < 10 ? { actions: good } : i < 20 ? { actions: bad } : {}) }];
        },
      };
      const s = state(faces, { actions: { model: branch, idx: branch.indexIn(model.labels) } });
      const out = await run(
        s,
        Array.from({ length: 30 }, (_, i) => frame(i, 10)),
      );
      const emotions = out.filter((e): e is EmotionEvent => e.type === 'emotion');
      const errors = out.filter((e) => e.type === 'error');
      assert.equal(emotions.length, 28, 'every window from the third frame on is read');
      assert.deepEqual(s.actionsFusion, { fused: 8, unusable: 10, without: 10 });
      assert.equal(errors.length, 1, 'named once, then only counted');
      const e = errors[0]!;
      assert.ok(e.type === 'error' && e.code === 'actions_unusable' && !e.fatal);
      assert.match(e.message, /frame 10 .*blendshape 'jawOpen' missing; read without blendshapes/);
    } finally {
      await branch.release();
    }
  });
});
