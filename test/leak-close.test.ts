import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
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

  it('40 sockets, each closed 0-40 ms after sending join and three transport requests', async () => {
    for (let i = 0; i < 40; i++) {
      const ws = new WebSocket(`${s.url.replace('http', 'ws')}/signaling`);
      await new Promise((r, j) => ws.once('open', r).once('error', j));
      ws.send(JSON.stringify({ id: 1, method: 'join', data: { room: `leak-${i % 3}`, name: `p${i}`, consent: false } }));
      for (let k = 0; k < 3; k++)
        ws.send(JSON.stringify({ id: 2 + k, method: 'createWebRtcTransport', data: { direction: k ? 'recv' : 'send' } }));
      await new Promise((r) => setTimeout(r, i % 41));
      ws.terminate();
    }
    // what is still in flight when the last socket goes finishes within a moment
    let now: Record<string, number> = {};
    for (let t = 0; t < 40; t++) {
      now = await left();
      if (Object.values(now).every((v) => v === 0)) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    assert.deepEqual(now, { rooms: 0, peers: 0, routers: 0, transports: 0, producers: 0, consumers: 0 });
  });
});
