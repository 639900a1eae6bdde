import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { gstDecodeArgs, gstTokens } from '../src/ingest/gstreamer.js';
import { openSource, type SourceOptions } from '../src/ingest/source.js';
import { parseJsonl, runCli, VIDEOS } from './helpers.js';

async function decodeAll(clip: string, o: SourceOptions): Promise<{ n: number; mean: number[] }> {
  const s = await openSource(clip, o);
  const mean: number[] = [];
  for await (const f of s.frames()) {
    let sum = 0;
    for (let i = 0; i < f.data.length; i += 4 * 97) sum += f.data[i]! + f.data[i + 1]! + f.data[i + 2]!;
    mean.push(sum / (3 * Math.ceil(f.data.length / (4 * 97))));
  }
  return { n: mean.length, mean };
}

describe('GStreamer decoder (decodebin here, nvv4l2decoder on Jetson)', () => {
  for (const clip of ['d18.mp4', 's18.mp4']) {
    it(`${clip}: the same frames as ffmpeg, in RGBA at the analysis size`, async () => {
      const base: SourceOptions = { maxSide: 640, sequenceFps: 30, realtime: false };
      const ff = await decodeAll(join(VIDEOS, clip), { ...base, decoder: 'ffmpeg' });
      const gst = await decodeAll(join(VIDEOS, clip), { ...base, decoder: 'gstreamer' });
      assert.equal(gst.n, ff.n);
      // colour conversion differs by a grey level or two between the two libraries
      const worst = Math.max(...gst.mean.map((m, i) => Math.abs(m - ff.mean[i]!)));
      assert.ok(worst < 4, `mean brightness differs by ${worst.toFixed(2)} on some frame`);
    });
  }

  it('run --decoder gstreamer produces emotion events', async () => {
    const r = await runCli(['run', '--input', join(VIDEOS, 'd12.mp4'), '--events', '-', '--decoder', 'gstreamer']);
    assert.equal(r.code, 0, r.stderr);
    const ev = parseJsonl(r.stdout);
    assert.ok(ev.filter((e) => e.type === 'emotion').length > 5);
  });

  it('builds the Jetson hardware pipelines and keeps quoted paths whole', () => {
    const hw = gstDecodeArgs('/data/a b.mp4', 'file', 320, 240, {
      pipeline: 'filesrc location={input} ! qtdemux ! h264parse ! nvv4l2decoder ! nvvidconv',
    });
    assert.ok(hw.includes('location="/data/a b.mp4"'));
    assert.ok(hw.includes('nvv4l2decoder'));
    assert.ok(hw.join(' ').endsWith('video/x-raw,format=RGBA,width=320,height=240,pixel-aspect-ratio=1/1 ! fdsink fd=1 sync=false'));
    assert.deepEqual(gstDecodeArgs('csi://1', 'camera', 640, 480).slice(2, 5), ['nvarguscamerasrc', 'sensor-id=1', '!']);
    assert.deepEqual(gstTokens('a b="c d" ! e'), ['a', 'b="c d"', '!', 'e']);
  });

  it('a broken GStreamer pipeline ends the stream with a fatal error event, not a crash', async () => {
    const cfg = join(mkdtempSync(join(tmpdir(), 'arpgnet-gst-')), 'cfg.json');
    writeFileSync(cfg, JSON.stringify({ ingest: { decoder: 'gstreamer', gstPipeline: 'nosuchelement location={input}' } }));
    const r = await runCli(['run', '--input', join(VIDEOS, 'd12.mp4'), '--events', '-', '--config', cfg]);
    assert.equal(r.code, 1);
    const ev = parseJsonl(r.stdout);
    const err = ev.find((e) => e.type === 'error');
    assert.ok(err && err.type === 'error' && err.fatal && /decoder exited/.test(err.message), JSON.stringify(err));
    const end = ev.at(-1)!;
    assert.ok(end.type === 'stream_end' && end.reason === 'error');
  });
});
