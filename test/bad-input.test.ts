import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, openSync, readFileSync, writeFileSync, writeSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { lastValueFrom, toArray } from 'rxjs';
import { openSource } from '../src/ingest/source.js';
import { silentLogger } from '../src/log.js';
import { EmotionPipeline } from '../src/pipeline/emotion-pipeline.js';
import { parseJsonl, ROOT, runCli, testConfig, VIDEOS } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'arpgnet-bad-'));
const ff = (...args: string[]): void => void execFileSync('ffmpeg', ['-v', 'error', '-y', ...args]);

describe('bad input gets a clear error, never a crash', () => {
  before(() => {
    writeFileSync(join(dir, 'random.mp4'), Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919) % 251)));
    writeFileSync(join(dir, 'notes.txt'), 'not a video\n');
    writeFileSync(join(dir, 'zero.mp4'), '');
    ff('-f', 'lavfi', '-i', 'sine=frequency=440:duration=1', join(dir, 'audio.m4a'));
    ff('-f', 'lavfi', '-i', 'testsrc=size=320x240:rate=10:duration=2', '-pix_fmt', 'yuv420p', join(dir, 'noface.mp4'));
    mkdirSync(join(dir, 'empty'));
    // a clip whose middle is overwritten with garbage: some frames fail to decode
    const broken = join(dir, 'broken.mp4');
    copyFileSync(join(VIDEOS, 'd11.mp4'), broken);
    const size = readFileSync(broken).length;
    const fd = openSync(broken, 'r+');
    writeSync(fd, Buffer.alloc(6000, 0x5a), 0, 6000, Math.floor(size * 0.45));
    closeSync(fd);
  });

  const fails = async (args: string[], pattern: RegExp, env: Record<string, string> = {}): Promise<void> => {
    const r = await runCli(args, env);
    assert.notEqual(r.code, 0, `expected a failure exit\n${r.stderr}`);
    assert.match(r.stderr, pattern);
    assert.doesNotMatch(r.stderr, /\n\s+at .*\(.*\.(ts|js):\d+/, 'a message, not a stack trace');
  };

  it('missing file', () => fails(['run', '--input', join(dir, 'nope.mp4')], /nope\.mp4: no such file/));
  it('corrupt file', () => fails(['run', '--input', join(dir, 'random.mp4')], /random\.mp4: not a readable video/));
  it('empty file', () => fails(['run', '--input', join(dir, 'zero.mp4')], /zero\.mp4: empty file/));
  it('no video stream', () => fails(['run', '--input', join(dir, 'audio.m4a')], /audio\.m4a: no video stream/));
  it('unsupported format', () => fails(['run', '--input', join(dir, 'notes.txt')], /notes\.txt: not a readable video/));
  it('empty folder', () => fails(['run', '--input', join(dir, 'empty')], /empty: no images/));
  it('missing camera', () => fails(['run', '--input', '/dev/video99'], /no such camera device/));
  it('bad flag value', () => fails(['run', '--fps', '-3'], /fps/));

  it('zero faces: the stream completes, every analysed frame counted as faceless', async () => {
    const r = await runCli(['run', '--input', join(dir, 'noface.mp4'), '--events', '-']);
    assert.equal(r.code, 0, r.stderr);
    const ev = parseJsonl(r.stdout);
    assert.equal(ev.filter((e) => e.type === 'emotion').length, 0);
    const end = ev.at(-1)!;
    assert.ok(end.type === 'stream_end' && end.stats.analysed > 0 && end.stats.framesWithoutFace === end.stats.analysed);
  });

  it('frames that fail to decode are skipped and counted; the stream goes on', async () => {
    const r = await runCli(['run', '--input', join(dir, 'broken.mp4'), '--events', '-']);
    assert.equal(r.code, 0, r.stderr);
    const ev = parseJsonl(r.stdout);
    const end = ev.at(-1)!;
    assert.ok(end.type === 'stream_end' && end.reason === 'eof', JSON.stringify(end));
    assert.ok(end.stats.decodeErrors > 0, 'decoder errors are counted');
    assert.ok(
      ev.some((e) => e.type === 'emotion' && e.ts > 3000),
      'analysis continues after the damage',
    );
  });

  it('a model whose inputs do not match is refused with the reason', async () => {
    const head = join(ROOT, 'models', 'arpgnet-edge.head.onnx');
    await fails(['run', '--input', join(VIDEOS, 'd11.mp4')], /is a head, not an encoder/, { ARPGNET_ENCODER: head });
    await fails(['run', '--input', join(VIDEOS, 'd11.mp4')], /notes\.txt is not an? (ONNX file|ARPGNet model)/, {
      ARPGNET_HEAD: join(dir, 'notes.txt'),
    });
    await fails(['run', '--input', join(VIDEOS, 'd11.mp4')], /model not readable/, { ARPGNET_HEAD: join(dir, 'none.onnx') });
  });

  it('a WebSocket port already in use', async () => {
    const { createServer } = await import('node:net');
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const port = (blocker.address() as { port: number }).port;
    await fails(
      ['run', '--input', join(VIDEOS, 'd11.mp4'), '--ws', String(port)],
      new RegExp(`cannot listen on 127\\.0\\.0\\.1:${port} \\(EADDRINUSE\\)`),
    );
    blocker.close();
  });

  it('a missing MediaPipe model names the path', () =>
    fails(['run', '--input', join(VIDEOS, 'd11.mp4')], /face landmarker model not readable at .*nowhere/, {
      ARPGNET_MODELS_DIR: join(dir, 'nowhere'),
    }));

  it('a face stage that keeps failing: each frame an error event, then the stream gives up with a fatal one', async () => {
    const cfg = testConfig({ maxFailedFrames: 5 });
    const pipeline = await EmotionPipeline.create(cfg, silentLogger);
    try {
      const source = await openSource(join(VIDEOS, 'd12.mp4'), { maxSide: 640, sequenceFps: 30, realtime: false }, 'cam-broken');
      const broken = {
        detect: (): never => {
          throw new Error('landmarker crashed');
        },
      };
      const run = await pipeline.analyse(source, { faces: broken });
      const events = await lastValueFrom(run.events$.pipe(toArray()));
      const errors = events.filter((e) => e.type === 'error');
      assert.equal(errors.filter((e) => e.type === 'error' && !e.fatal).length, 5, 'one non-fatal error per failed frame');
      const fatal = errors.at(-1)!;
      assert.ok(fatal.type === 'error' && fatal.fatal && fatal.code === 'analysis_failed', JSON.stringify(fatal));
      assert.match(fatal.type === 'error' ? fatal.message : '', /5 frames in a row .*landmarker crashed/);
      const end = events.at(-1)!;
      assert.ok(end.type === 'stream_end' && end.reason === 'error', JSON.stringify(end));
      assert.ok(source.stopped || end.stats.decoded < 100, 'the decoder was stopped, not read to the end');
    } finally {
      await pipeline.close();
    }
  });
});
