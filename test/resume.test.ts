import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { WebSocket } from 'ws';
import { EventsClient, type HubEvent, type SocketFactory } from '../src/client/index.js';
import { silentLogger } from '../src/log.js';
import type { PipelineEvent } from '../src/publish/events.js';
import { Authenticator } from '../src/host/auth.js';
import { serve, serveEvents, type EventsServing, type Serving } from '../src/roles/serve.js';
import { until } from './call.js';
import { assertSchemaV1, serveTestConfig, testConfig, testEvent } from './helpers.js';

const event = (room: string, i: number): PipelineEvent => testEvent(room, i);

async function hubOn(ringSize: number): Promise<{ hub: EventsServing; url: string }> {
  const c = testConfig();
  const hub = await serveEvents({ ...c, publish: { ...c.publish, maxQueue: 256, ringSize, ringMaxAgeMs: 60_000 } }, silentLogger, 0);
  return { hub, url: `${hub.url.replace('http', 'ws')}/events` };
}

function listen(url: string): Promise<{ ws: WebSocket; got: HubEvent[] }> {
  const ws = new WebSocket(url);
  const got: HubEvent[] = [];
  ws.on('message', (d) => got.push(JSON.parse(String(d)) as HubEvent));
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve({ ws, got }));
    ws.once('error', reject);
  });
}

describe('resume by seq on /events', () => {
  it('a subscriber dropped mid-stream gets every missed event exactly once; past the ring, a gap', async () => {
    const { hub, url } = await hubOn(8);
    try {
      const a = await listen(`${url}?room=r`);
      for (let i = 1; i <= 5; i++) hub.publish(event('r', i));
      hub.publish(event('other', 1)); // other rooms have their own numbering and never reach this client
      await until(() => a.got.length === 5, 5000, 'five events');
      assert.deepEqual(
        a.got.map((e) => (e.type === 'gap' ? -1 : e.seq)),
        [1, 2, 3, 4, 5],
      );
      a.ws.terminate();
      for (let i = 6; i <= 9; i++) hub.publish(event('r', i));
      const b = await listen(`${url}?room=r&resume=5`);
      await until(() => b.got.length >= 4, 5000, 'the missed events');
      hub.publish(event('r', 10));
      await until(() => b.got.length >= 5, 5000, 'the next live event');
      await new Promise((r) => setTimeout(r, 200));
      assert.deepEqual(
        b.got.map((e) => (e.type === 'gap' ? -1 : e.seq)),
        [6, 7, 8, 9, 10],
        'missed ones once, then live',
      );
      b.ws.close();

      // the ring holds 8: resuming from 1 after 10 events is too late for 2
      const c = await listen(`${url}?room=r&resume=1`);
      await until(() => c.got.length >= 9, 5000, 'a gap and the ring');
      const gap = c.got[0]!;
      assert.equal(gap.type, 'gap');
      assert.ok(gap.type === 'gap' && gap.from === 2 && gap.to === 2 && gap.reason === 'expired', JSON.stringify(gap));
      assert.deepEqual(
        c.got.slice(1).map((e) => (e.type === 'gap' ? -1 : e.seq)),
        [3, 4, 5, 6, 7, 8, 9, 10],
      );
      c.ws.close();

      // a v1 reader gets the same events in schema v1
      const old = await listen(`${url}?room=r&resume=8&v=1`);
      await until(() => old.got.length >= 2, 5000, 'v1 events');
      for (const e of old.got) {
        assert.equal(e.v, 1);
        assertSchemaV1(e);
      }
      old.ws.close();

      const bad = new WebSocket(`${url}?resume=3`);
      const code = await new Promise<number>((r) => bad.once('close', (c2) => r(c2)));
      assert.equal(code, 4400, 'resume without a room is refused');
    } finally {
      await hub.close();
    }
  });
});

describe('arpgnet-edge/client against a real server', () => {
  let s: Serving;
  const SECRET = 'client-test-secret-at-least-thirty-two-chars';
  before(async () => {
    const c = serveTestConfig();
    s = await serve({ ...c, auth: { mode: 'on', secret: SECRET, origins: [] } }, silentLogger);
  });
  after(async () => {
    await s?.close();
  });

  it('reconnects with backoff, asks for a fresh token, resumes by seq: every event once, in order', async () => {
    const auth = new Authenticator(SECRET, true);
    let tokens = 0;
    const sockets: WebSocket[] = [];
    // the `ws` WebSocket, remembered so the test can cut the connection as a network would
    const Recording = class extends WebSocket {
      constructor(url: string) {
        super(url);
        sockets.push(this);
      }
    } as unknown as SocketFactory;
    const client = new EventsClient({
      url: `${s.url.replace('http', 'ws')}/events`,
      room: 'c',
      WebSocket: Recording,
      backoff: { initialMs: 1500, maxMs: 3000 },
      // the first token is short-lived, so the reconnect must fetch another; 2 s, since a JWT's
      // exp counts whole seconds and a 1 s token signed late in a second can expire at once
      token: () => auth.sign({ room: 'c', identity: 'integration', grants: ['subscribe'], ttlSeconds: tokens++ === 0 ? 2 : 600 }),
    });
    const seen: number[] = [];
    const viaRx: HubEvent[] = [];
    client.on((e) => {
      if (e.type !== 'gap' && e.seq !== undefined) seen.push(e.seq);
    });
    const sub = client.events$.subscribe((e) => viaRx.push(e));
    try {
      await until(() => client.state === 'open', 5000, 'the client to connect');
      await new Promise((r) => setTimeout(r, 200)); // its auth message is on its way
      for (let i = 1; i <= 5; i++) void s.bus.publishEvent(event('c', i));
      await until(() => seen.length === 5, 5000, 'five events');
      sockets.at(-1)!.terminate(); // the network drops
      for (let i = 6; i <= 12; i++) void s.bus.publishEvent(event('c', i));
      await until(() => seen.length === 12, 15_000, 'the missed events after reconnecting');
      assert.deepEqual(seen, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
      assert.equal(viaRx.length, 12, 'the Observable sees the same events');
      assert.equal(tokens, 2, 'a fresh token for the reconnect');
      assert.equal(client.reconnects, 1);
      assert.equal(client.lastSeq, 12);
    } finally {
      sub.unsubscribe();
      client.close();
    }
  });
});
