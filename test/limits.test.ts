import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { WebSocket } from 'ws';
import { silentLogger } from '../src/log.js';
import { TokenBucket } from '../src/host/limits.js';
import { serve, type Serving } from '../src/roles/serve.js';
import { TestPeer } from './call.js';
import { serveTestConfig } from './helpers.js';

const closeCode = (url: string): Promise<number> =>
  new Promise((resolve) => {
    const ws = new WebSocket(url);
    ws.once('close', (code) => resolve(code));
  });

/** A VP8 producer's parameters, enough for mediasoup to accept a produce on a plain transport. */
const vp8 = (ssrc: number) => ({
  codecs: [{ mimeType: 'video/VP8', payloadType: 101, clockRate: 90000 }],
  encodings: [{ ssrc }],
});

describe('limits: per-connection request rate, peers and producers per room, rooms, connections, message size', () => {
  let s: Serving;
  before(async () => {
    const c = serveTestConfig();
    s = await serve(
      {
        ...c,
        limits: {
          ...c.limits,
          requestsPerSecond: 2,
          requestBurst: 8,
          peersPerRoom: 2,
          producersPerRoom: 1,
          rooms: 2,
          connections: 8,
          messageBytes: 2048,
        },
      },
      silentLogger,
    );
  });
  after(() => s.close());

  it('the token bucket allows its burst, then its rate', () => {
    const b = new TokenBucket(10, 3, 0);
    assert.deepEqual(
      [0, 0, 0, 0].map(() => b.take(0)),
      [true, true, true, false],
    );
    assert.equal(b.take(50), false, 'half a token after 50 ms');
    assert.equal(b.take(100), true, 'one token after 100 ms at 10/s');
  });

  it('each limit refuses with a clear error to that client only, counted per limit; the others go on', { timeout: 60_000 }, async () => {
    const refusals = s.limits.refusals;
    // a flood from one connection: the burst is answered, the rest refused, and another connection is unaffected
    const flood = await TestPeer.open(s.url);
    const replies = await Promise.all(Array.from({ length: 20 }, () => flood.call('leave')));
    const limited = replies.filter((r) => r.error?.code === 'rate_limited');
    assert.equal(replies.filter((r) => r.ok).length, 8, 'the burst');
    assert.equal(limited.length, 12);
    assert.match(limited[0]!.error!.message, /more than 2 requests a second/);
    assert.equal(refusals.rate, 12);
    const calm = await TestPeer.open(s.url);
    await calm.request('join', { room: 'a', name: 'calm' });

    // message size: over the limit an error reply; over four times it, the socket is closed
    const big = await TestPeer.open(s.url);
    big.ws.send(JSON.stringify({ id: 1, method: 'join', data: { room: 'a', name: 'x'.repeat(3000) } }));
    assert.equal((await big.nextStray()).error?.code, 'too_large');
    assert.equal(refusals.message_size, 1);

    // peers per room: two in room a, the third is refused
    await big.request('join', { room: 'a', name: 'second' });
    const third = await TestPeer.open(s.url);
    const full = await third.call('join', { room: 'a', name: 'third' });
    assert.equal(full.error?.code, 'limit_reached');
    assert.match(full.error?.message ?? '', /room a holds its limit of 2 peers/);
    assert.equal(refusals.peers_per_room, 1);

    // rooms: a and b exist, c is refused; joining an existing room is still fine
    await third.request('join', { room: 'b', name: 'third' });
    const fourth = await TestPeer.open(s.url);
    assert.equal((await fourth.call('join', { room: 'c', name: 'x' })).error?.code, 'limit_reached');
    assert.equal(refusals.rooms, 1);

    // producers per room: one in room b, the second is refused
    const t1 = await third.request<{ id: string }>('createPlainTransport');
    await third.request('produce', { transportId: t1.id, kind: 'video', rtpParameters: vp8(1111) });
    const second = await third.call('produce', { transportId: t1.id, kind: 'video', rtpParameters: vp8(2222) });
    assert.equal(second.error?.code, 'limit_reached');
    assert.equal(refusals.producers_per_room, 1);

    // connections: five open so far, three more (both endpoints count) make the limit of 8, then refused with 1013
    const extra = await TestPeer.open(s.url);
    const events = [0, 1].map(() => new WebSocket(`${s.url.replace('http', 'ws')}/events`));
    await Promise.all(events.map((ws) => new Promise((r) => ws.once('open', r))));
    assert.equal(await closeCode(`${s.url.replace('http', 'ws')}/events`), 1013);
    assert.equal(await closeCode(`${s.url.replace('http', 'ws')}/signaling`), 1013);
    assert.equal(refusals.connections, 2);

    // every refusal is on /metrics, per limit
    const metrics = await (await fetch(`${s.url}/metrics`)).text();
    assert.match(metrics, /arpgnet_limit_refusals_total\{limit="rate"\} 12/);
    assert.match(metrics, /arpgnet_limit_refusals_total\{limit="connections"\} 2/);
    assert.match(metrics, /arpgnet_connections 8/);

    // closing frees connection slots
    for (const p of [flood, big, fourth, extra]) p.close();
    events.forEach((ws) => ws.close());
    await new Promise((r) => setTimeout(r, 200));
    const again = await TestPeer.open(s.url);
    assert.ok((await again.call('leave')).ok);
    for (const p of [again, calm, third]) p.close();
  });
});
