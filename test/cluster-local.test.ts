import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { describe, it } from 'node:test';
import { LocalBus } from '../src/bus/local.js';
import { silentLogger } from '../src/log.js';
import type { PipelineEvent } from '../src/publish/events.js';
import { serve } from '../src/roles/serve.js';
import { publishClip, subscribeEvents, TestPeer, until } from './call.js';
import { serveTestConfig, testEvent } from './helpers.js';

const event = (room: string, stream: string, i: number): PipelineEvent => testEvent(room, i, stream);

describe('the in-process bus: the same interface as NATS, so the scale-out roles run in one process', () => {
  it('subjects, request/reply, and a per-room log with contiguous seq, reads from any seq, retention', async () => {
    const bus = new LocalBus({ maxAgeMs: 60_000, maxBytes: 2000 });
    await assert.rejects(bus.request('nobody', 'x'), /no responders/);
    bus.subscribe('echo', (m) => m.respond?.(m.data.toUpperCase()));
    assert.equal(await bus.request('echo', 'hi'), 'HI');
    for (let i = 1; i <= 5; i++) assert.equal(await bus.publishEvent(event('r', i % 2 ? 'a' : 'b', i)), i);
    assert.equal(await bus.publishEvent(event('other', 'a', 1)), 1, 'each room counts on its own');
    const reader = await bus.readRoom('r', { from: 3, stream: null });
    const seqs: number[] = [];
    for await (const m of reader) {
      seqs.push(m.seq);
      if (m.seq === 5) break;
    }
    assert.deepEqual(seqs, [3, 4, 5]);
    // only one stream, and live: it waits for the next one
    const live = await bus.readRoom('r', { from: null, stream: 'a' });
    const next = (async () => {
      for await (const m of live) return m.seq;
      return -1;
    })();
    await bus.publishEvent(event('r', 'b', 6));
    await bus.publishEvent(event('r', 'a', 7));
    assert.equal(await next, 7);
    // past maxBytes the oldest go: the log's first seq moves on
    for (let i = 8; i < 40; i++) await bus.publishEvent(event('r', 'a', i));
    const log = await bus.roomLog('r');
    assert.equal(log.last, 39);
    assert.ok(log.first > 1, `first ${log.first}`);
    await bus.close();
  });

  it('serve --role sfu,analyser,gateway without NATS: an RTP participant analysed through the roles, events resumed by seq', async () => {
    const c = serveTestConfig();
    const s = await serve({ ...c, cluster: { ...c.cluster, roles: ['sfu', 'analyser', 'gateway'] } }, silentLogger);
    let sender: ChildProcess | null = null;
    try {
      const health = (await (await fetch(`${s.url}/healthz`)).json()) as { roles: string[]; bus: { inProcess?: boolean } };
      assert.deepEqual(health.roles, ['sfu', 'analyser', 'gateway']);
      assert.equal(health.bus.inProcess, true);
      const sub = await subscribeEvents(s.url, '?room=local');
      const peer = await TestPeer.open(s.url);
      await peer.request('join', { room: 'local', name: 'gus', consent: true });
      const p = await publishClip(peer, 8181);
      sender = p.sender;
      const id = p.producerId;
      await until(() => sub.got.filter((e) => e.type === 'emotion' && e.stream === id).length >= 5, 60_000, 'emotion events');
      const seqs = sub.got.map((e) => e.seq!);
      seqs.forEach((q, i) => i === 0 || assert.equal(q, seqs[i - 1]! + 1));
      // a second subscriber resumes from the third event and gets the same events after it
      const again = await subscribeEvents(s.url, `?room=local&resume=${seqs[2]}`);
      await until(() => again.got.length >= 3, 10_000, 'the resumed events');
      assert.deepEqual(
        again.got.slice(0, 3).map((e) => e.seq),
        seqs.slice(3, 6),
      );
      for (const x of [sub, again]) x.ws.close();
      peer.close();
    } finally {
      sender?.kill('SIGKILL');
      await s.close();
    }
  });
});
