import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { lastValueFrom, tap } from 'rxjs';
import { WebSocket } from 'ws';
import { openSource } from '../src/ingest/source.js';
import { silentLogger } from '../src/log.js';
import { EmotionPipeline } from '../src/pipeline/emotion-pipeline.js';
import type { PipelineEvent } from '../src/publish/events.js';
import { serveEvents, type EventsServing } from '../src/roles/serve.js';
import { assertSchema, testConfig, VIDEOS } from './helpers.js';

async function hubOn(maxQueue = 256, highWaterBytes = 1 << 20): Promise<{ hub: EventsServing; port: number }> {
  const c = testConfig();
  const hub = await serveEvents({ ...c, publish: { ...c.publish, maxQueue } }, silentLogger, 0, { highWaterBytes });
  return { hub, port: Number(new URL(hub.url).port) };
}

function subscribe(port: number, query = ''): Promise<{ ws: WebSocket; got: PipelineEvent[] }> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/events${query}`);
  const got: PipelineEvent[] = [];
  ws.on('message', (d) => got.push(JSON.parse(String(d)) as PipelineEvent));
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve({ ws, got }));
    ws.once('error', reject);
  });
}

const settle = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('events over WebSocket (/events)', () => {
  it("subscribers receive a real stream's events; ?stream= and ?room= narrow them", async () => {
    const { hub, port } = await hubOn();
    const all = await subscribe(port);
    const mine = await subscribe(port, '?stream=cam-1');
    const other = await subscribe(port, '?stream=cam-2');
    const room = await subscribe(port, '?room=lobby');
    const sums = await subscribe(port, '?room=lobby&summaries=1');
    const pipeline = await EmotionPipeline.create(testConfig(), silentLogger);
    const source = await openSource(join(VIDEOS, 'd12.mp4'), { maxSide: 640, sequenceFps: 30, realtime: false }, 'cam-1');
    const run = await pipeline.analyse(source, { room: 'lobby' });
    const published: PipelineEvent[] = [];
    await lastValueFrom(run.events$.pipe(tap((e) => (published.push(e), hub.publish(e)))));
    await settle(300);
    assert.ok(published.filter((e) => e.type === 'emotion').length > 5);
    // summaries only to those who ask for them (the face's last one, as the stream ended)
    const served = published.filter((e) => e.type !== 'summary');
    assert.equal(published.length - served.length, 1);
    assert.equal(all.got.length, served.length);
    assert.deepEqual(
      mine.got.map((e) => e.type),
      served.map((e) => e.type),
    );
    assert.equal(room.got.length, served.length);
    assert.deepEqual(
      sums.got.map((e) => e.type),
      published.map((e) => e.type),
    );
    assert.equal(other.got.length, 0);
    all.got.forEach(assertSchema);
    sums.got.forEach(assertSchema);
    for (const c of [all, mine, other, room, sums]) c.ws.close();
    await hub.close();
    await pipeline.close();
  });

  it('a client that stops reading loses its oldest events (counted); the others lose none', async () => {
    const { hub, port } = await hubOn(16, 64 * 1024);
    const fast = await subscribe(port);
    const slow = await subscribe(port);
    // stop reading: the kernel buffers fill, then the hub's queue for this client
    (slow.ws as unknown as { _socket: { pause(): void } })._socket.pause();
    const pad = 'x'.repeat(2000);
    const n = 4000;
    for (let i = 0; i < n; i++) {
      hub.publish({
        v: 3,
        type: 'error',
        stream: 's',
        ts: i,
        wallTime: new Date().toISOString(),
        code: 'test',
        message: pad,
        fatal: false,
      });
      if (i % 200 === 0) await settle(5);
    }
    await settle(500);
    assert.equal(fast.got.length, n, 'the reading client got every event');
    assert.ok(hub.gateway.droppedTotal > 0, 'the stalled client dropped events');
    assert.ok(hub.gateway.droppedTotal < n);
    // reading again, the slow client is told what it lost: a gap covering exactly the dropped events
    (slow.ws as unknown as { _socket: { resume(): void } })._socket.resume();
    hub.publish({
      v: 3,
      type: 'error',
      stream: 's',
      ts: n,
      wallTime: new Date().toISOString(),
      code: 'test',
      message: 'after',
      fatal: false,
    });
    await settle(1000);
    const gaps = slow.got.filter((e) => (e as { type: string }).type === 'gap') as unknown as Array<{
      from: number;
      to: number;
      reason: string;
    }>;
    assert.ok(gaps.length >= 1, 'a gap event');
    assert.ok(gaps.every((g) => g.reason === 'dropped'));
    assert.equal(
      gaps.reduce((a, g) => a + g.to - g.from + 1, 0),
      hub.gateway.droppedTotal,
      'the gaps name every dropped event',
    );
    fast.ws.close();
    slow.ws.terminate();
    await hub.close();
  });
});
