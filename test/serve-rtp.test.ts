import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { silentLogger } from '../src/log.js';
import type { EmotionEvent, PipelineEvent } from '../src/publish/events.js';
import { serve, type Serving } from '../src/roles/serve.js';
import { publishClip, subscribeEvents, TestPeer, until } from './call.js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { assertSchema, processes, ROOT, serveTestConfig } from './helpers.js';

const decoders = (): number[] => processes('arpgnet-rtp-');

/** Scrapes /metrics and parses the Prometheus text format: every sample line must be `name{labels} value`. */
async function metrics(base: string): Promise<Map<string, number>> {
  const res = await fetch(`${base}/metrics`);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  const out = new Map<string, number>();
  for (const line of (await res.text()).split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?) (-?[0-9.e+-]+|NaN|[+-]Inf)$/.exec(line);
    assert.ok(m, `not a Prometheus sample line: ${line}`);
    out.set(m[1]!, Number(m[2]));
  }
  return out;
}

async function sendInto(peer: TestPeer, ssrc: number): Promise<{ producerId: string; analysed: boolean; sender: ChildProcess }> {
  return publishClip(peer, ssrc, { appData: { width: 480, height: 480 } });
}

describe('serve: RTP into the SFU -> per-producer decoding -> emotion events', () => {
  let s: Serving;
  const senders: ChildProcess[] = [];
  before(async () => {
    s = await serve(serveTestConfig({ maxStreams: 3 }), silentLogger);
  });
  after(async () => {
    for (const p of senders) p.kill('SIGKILL');
    await s.close();
  });

  it('an ffmpeg RTP sender of a real face clip gets emotion events for its producer, with stream_start/stream_end', async () => {
    const sub = await subscribeEvents(s.url, '?room=rtp');
    const a = await TestPeer.open(s.url);
    await a.request('join', { room: 'rtp', name: 'alice', consent: true });
    const { producerId, analysed, sender } = await sendInto(a, 1111);
    senders.push(sender);
    assert.equal(analysed, true);
    const mine = (e: PipelineEvent) => e.stream === producerId;
    await until(() => sub.got.some((e) => mine(e) && e.type === 'emotion'), 60_000, 'an emotion event');
    const start = sub.got.find((e) => mine(e) && e.type === 'stream_start');
    assert.ok(start && start.type === 'stream_start');
    assert.equal(start.source.kind, 'webrtc');
    assert.equal(start.room, 'rtp');
    assert.match(start.source.uri, /^webrtc:rtp\/alice$/);
    const emo = sub.got.find((e): e is EmotionEvent => mine(e) && e.type === 'emotion')!;
    for (const e of sub.got) assertSchema(e);
    assert.ok(start.model.labels.includes(emo.label) || emo.label === 'uncertain', emo.label);
    assert.ok(emo.box.w > 0.1 && emo.box.w < 1, 'the face box (normalised) covers a face');
    const health = (await (await fetch(`${s.url}/healthz`)).json()) as {
      analyser: { streams: Array<{ stream: string; decoded: number; firstFrameMs: number }> };
    };
    const st = health.analyser.streams.find((x) => x.stream === producerId);
    assert.ok(st && st.decoded > 0 && st.firstFrameMs > 0);

    // /metrics is Prometheus text, and its counters move while the stream is analysed
    const m1 = await metrics(s.url);
    await until(() => sub.got.filter((e) => mine(e) && e.type === 'emotion').length > 6, 30_000, 'more events');
    const m2 = await metrics(s.url);
    for (const k of [
      'arpgnet_frames_total{state="analysed"}',
      'arpgnet_frames_total{state="decoded"}',
      'arpgnet_events_published_total{type="emotion"}',
      'arpgnet_stage_ms_count{stage="encoder"}',
      'arpgnet_frame_to_event_ms_count',
    ]) {
      assert.ok((m2.get(k) ?? 0) > (m1.get(k) ?? 0), `${k} moved: ${m1.get(k)} -> ${m2.get(k)}`);
    }
    assert.equal(m2.get('arpgnet_streams_active'), 1);

    // a subscriber that asks for facial actions turns them on for the running stream
    const withActions = await subscribeEvents(s.url, '?room=rtp&actions=1');
    await until(
      () => withActions.got.some((e) => mine(e) && e.type === 'emotion' && !!e.actions && Object.keys(e.actions).length >= 50),
      20_000,
      'emotion events with facial actions',
    );
    withActions.ws.close();
    const m3 = await metrics(s.url);
    assert.ok((m3.get('arpgnet_actions_windows_total{read="fused"}') ?? 0) > 0, 'windows read with the facial-actions branch are counted');
    assert.equal(m3.get('arpgnet_actions_windows_total{read="unusable"}'), 0);
    assert.ok((m2.get('arpgnet_process_resident_memory_bytes') ?? 0) > 0, 'process metrics');
    // every series the example Grafana dashboard plots exists
    const dashboard = readFileSync(join(ROOT, 'deploy', 'grafana', 'arpgnet-edge.dashboard.json'), 'utf8');
    const names = new Set([...m2.keys()].map((k) => k.replace(/\{.*$/, '')));
    for (const used of new Set(dashboard.match(/arpgnet_[a-z0-9_]+/g) ?? [])) {
      if (used === 'arpgnet_edge') continue; // the dashboard's uid
      assert.ok(names.has(used), `the dashboard plots ${used}, which /metrics does not have`);
    }

    // a dying decoder is restarted with a key-frame request, and events go on
    const pids = decoders();
    assert.equal(pids.length, 1, 'one decoder process for one analysed producer');
    process.kill(pids[0]!, 'SIGKILL');
    const before = sub.got.filter((e) => mine(e) && e.type === 'emotion').length;
    await until(() => s.analyser!.streams().some((x) => x.stream === producerId && x.restarts === 1), 10_000, 'a decoder restart');
    await until(() => sub.got.filter((e) => mine(e) && e.type === 'emotion').length > before + 2, 30_000, 'events after the restart');
    assert.ok(!sub.got.some((e) => mine(e) && e.type === 'stream_end'), 'a restart does not end the stream');

    // pause ends the analysis (decoder gone); resume starts a new stream; close ends it
    await a.request('pauseProducer', { producerId });
    await until(() => sub.got.some((e) => mine(e) && e.type === 'stream_end'), 10_000, 'stream_end on pause');
    await until(() => decoders().length === 0, 5000, 'the decoder to exit');
    await a.request('resumeProducer', { producerId });
    await until(() => sub.got.filter((e) => mine(e) && e.type === 'stream_start').length === 2, 10_000, 'a new stream_start on resume');
    await a.request('closeProducer', { producerId });
    await until(() => sub.got.filter((e) => mine(e) && e.type === 'stream_end').length === 2, 10_000, 'stream_end on close');
    await until(() => decoders().length === 0, 5000, 'the decoder to exit');
    a.close();
    sub.ws.close();
  });

  it('without consent nothing is decoded; switching consent on starts the analysis, off stops it', async () => {
    const sub = await subscribeEvents(s.url, '?room=quiet');
    const b = await TestPeer.open(s.url);
    await b.request('join', { room: 'quiet', name: 'bob' });
    const started = s.sfu!.placement.counters.started;
    const { producerId, analysed, sender } = await sendInto(b, 2222);
    senders.push(sender);
    assert.equal(analysed, false);
    await new Promise((r) => setTimeout(r, 3000));
    assert.equal(s.sfu!.placement.counters.started, started, 'no analysis was started');
    assert.equal(decoders().length, 0, 'no decoder process runs');
    assert.equal(sub.got.filter((e) => e.stream === producerId).length, 0, 'no events');

    await b.request('setConsent', { consent: true });
    await until(() => sub.got.some((e) => e.stream === producerId && e.type === 'emotion'), 60_000, 'events after consent');
    await b.request('setConsent', { consent: false });
    await until(
      () => sub.got.some((e) => e.stream === producerId && e.type === 'stream_end'),
      10_000,
      'stream_end after consent is withdrawn',
    );
    await until(() => decoders().length === 0, 5000, 'the decoder to exit');

    // leaving ends everything of that peer
    await b.request('setConsent', { consent: true });
    await until(() => decoders().length === 1, 10_000, 'a decoder again');
    b.close();
    await until(() => decoders().length === 0 && s.analyser!.streams().length === 0, 10_000, 'cleanup after leave');
    sub.ws.close();
  });
});
