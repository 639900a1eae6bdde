import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { WebSocket } from 'ws';
import { silentLogger } from '../src/log.js';
import { serve, type Serving } from '../src/roles/serve.js';
import { serveTestConfig } from './helpers.js';

/**
 * A socket that goes while its requests are still in flight (a join making the room, a
 * transport being made) leaves nothing behind: the request finishes into a peer nobody
 * holds otherwise. Closed at many points of the join and transport requests.
 */
describe('signaling: a socket closed mid-request leaves no room, peer or transport', () => {
  let s: Serving;
  before(async () => {
    s = await serve(serveTestConfig(), silentLogger);
  });
  after(() => s.close());

  const left = async (): Promise<Record<string, number>> => {
    const h = (await (await fetch(`${s.url}/healthz`)).json()) as { sfu: { rooms: number; peers: number; media: Record<string, number> } };
    return { rooms: h.sfu.rooms, peers: h.sfu.peers, ...h.sfu.media };
  };

  const drained = async (): Promise<Record<string, number>> => {
    // what is still in flight when the last socket goes finishes within a moment
    let now: Record<string, number> = {};
    for (let t = 0; t < 40; t++) {
      now = await left();
      if (Object.values(now).every((v) => v === 0)) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    return now;
  };
  const ZERO = { rooms: 0, peers: 0, routers: 0, transports: 0, producers: 0, consumers: 0 };

  const open = async (): Promise<WebSocket> => {
    const ws = new WebSocket(`${s.url.replace('http', 'ws')}/signaling`);
    await new Promise((r, j) => ws.once('open', r).once('error', j));
    return ws;
  };

  it('40 sockets, each closed 0-40 ms after sending join and three transport requests', async () => {
    for (let i = 0; i < 40; i++) {
      const ws = await open();
      ws.send(JSON.stringify({ id: 1, method: 'join', data: { room: `leak-${i % 3}`, name: `p${i}`, consent: false } }));
      for (let k = 0; k < 3; k++)
        ws.send(JSON.stringify({ id: 2 + k, method: 'createWebRtcTransport', data: { direction: k ? 'recv' : 'send' } }));
      await new Promise((r) => setTimeout(r, i % 41));
      ws.terminate();
    }
    assert.deepEqual(await drained(), ZERO);
    const text = await (await fetch(`${s.url}/metrics`)).text();
    for (const series of [
      'arpgnet_peers',
      'arpgnet_rooms',
      'arpgnet_media_objects{kind="transports"}',
      'arpgnet_media_objects{kind="routers"}',
    ])
      assert.ok(text.split('\n').includes(`${series} 0`), `${series} 0 on /metrics`);
  });

  // a model of what a client may send, in any order, cut off at any moment
  const step = fc.oneof(
    fc.record({
      method: fc.constant('join'),
      data: fc.record({ room: fc.constantFrom('m1', 'm2'), name: fc.constant('x'), consent: fc.boolean() }),
    }),
    fc.record({ method: fc.constant('createWebRtcTransport'), data: fc.record({ direction: fc.constantFrom('send', 'recv') }) }),
    fc.record({ method: fc.constant('createPlainTransport'), data: fc.constant({}) }),
    fc.record({ method: fc.constant('setConsent'), data: fc.record({ consent: fc.boolean() }) }),
    fc.record({ method: fc.constant('leave'), data: fc.constant({}) }),
  );

  it('fast-check: random requests from 3 sockets, each closed at a random moment; everything back at zero', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(fc.array(step, { maxLength: 8 }), fc.integer({ min: 0, max: 30 })), { minLength: 1, maxLength: 3 }),
        async (clients) => {
          await Promise.all(
            clients.map(async ([steps, closeAfterMs]) => {
              const ws = await open();
              steps.forEach((st, i) => ws.send(JSON.stringify({ id: i + 1, ...st })));
              await new Promise((r) => setTimeout(r, closeAfterMs));
              ws.terminate();
            }),
          );
          assert.deepEqual(await drained(), ZERO);
        },
      ),
      { numRuns: Number(process.env['FUZZ_RUNS'] ?? 30), seed: Number(process.env['FUZZ_SEED'] ?? 7) },
    );
  });
});
