import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { verifyWebhook } from '../src/client/webhooks.js';
import { silentLogger } from '../src/log.js';
import { Webhooks, type WebhookOptions } from '../src/publish/webhooks.js';
import type { EmotionEvent, HubEvent, RoomSummaryEvent } from '../src/publish/events.js';
import { serve, type Serving } from '../src/roles/serve.js';
import { publishClip, subscribeEvents, TestPeer, until } from './call.js';
import { assertSchema, assertSchemaV2, serveTestConfig } from './helpers.js';

const SECRET = `whsec_${Buffer.from('a webhook secret of 32 bytes!!!!').toString('base64')}`;

interface Got {
  body: string;
  headers: IncomingHttpHeaders;
}

/** A receiver on loopback that answers what `answer` says (a status, or 'hang'). */
async function receiver(answer: (n: number) => number | 'hang'): Promise<{ url: string; got: Got[]; server: Server }> {
  const got: Got[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString('utf8')));
    req.on('end', () => {
      got.push({ body, headers: req.headers });
      const a = answer(got.length);
      if (a !== 'hang') res.writeHead(a).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, got, server };
}

const opts = (endpoints: WebhookOptions['endpoints'], o: Partial<WebhookOptions> = {}): WebhookOptions => ({
  endpoints,
  maxQueue: 10,
  timeoutMs: 300,
  maxAttempts: 3,
  retryMs: 50,
  ...o,
});
const ALL = ['stream_start', 'stream_end', 'summary'] as const;

describe('webhooks', () => {
  const servers: Server[] = [];
  after(() =>
    servers.forEach((s) => {
      s.closeAllConnections();
      s.close();
    }),
  );

  it('are signed, verified by the client package, and a tampered body or another secret fails', async () => {
    const r = await receiver(() => 204);
    servers.push(r.server);
    const w = new Webhooks(opts([{ url: r.url, secret: SECRET, events: ALL }]), silentLogger);
    w.send('room:1', 'stream_start', '{"type":"stream_start"}');
    await until(() => w.counts.delivered === 1, 5000, 'the delivery');
    const [g] = r.got;
    assert.ok(verifyWebhook(SECRET, g!.body, g!.headers));
    assert.equal(g!.headers['webhook-id'], 'room:1');
    assert.equal(verifyWebhook(SECRET, g!.body.replace('start', 'end'), g!.headers), false);
    assert.equal(verifyWebhook(`whsec_${Buffer.from('another secret of 32 bytes!!!!!!').toString('base64')}`, g!.body, g!.headers), false);
    w.close();
  });

  it('a receiver that answers 500 gets the same delivery again, same id, until it takes it', async () => {
    const r = await receiver((n) => (n < 3 ? 500 : 200));
    servers.push(r.server);
    const w = new Webhooks(opts([{ url: r.url, secret: SECRET, events: ALL }], { maxAttempts: 5 }), silentLogger);
    w.send('room:7', 'summary', '{"type":"summary"}');
    await until(() => w.counts.delivered === 1, 5000, 'the third attempt');
    assert.equal(r.got.length, 3);
    assert.deepEqual(new Set(r.got.map((g) => g.headers['webhook-id'])), new Set(['room:7']));
    assert.equal(w.counts.retried, 2);
    w.close();
  });

  it('a receiver that hangs is given up after maxAttempts, its queue is bounded, and another endpoint is not slowed', async () => {
    const dead = await receiver(() => 'hang');
    const live = await receiver(() => 200);
    servers.push(dead.server, live.server);
    const w = new Webhooks(
      opts([
        { url: dead.url, secret: SECRET, events: ALL },
        { url: live.url, secret: SECRET, events: ['stream_end'] as const },
      ]),
      silentLogger,
    );
    const t0 = Date.now();
    for (let i = 0; i < 30; i++) w.send(`r:${i}`, 'stream_end', `{"i":${i}}`);
    // each queue holds the newest 10: 20 of each endpoint's 30 are dropped, counted
    const newest = Array.from({ length: 10 }, (_, i) => `r:${20 + i}`);
    const ids = (): string[] => live.got.map((g) => String(g.headers['webhook-id']));
    await until(
      () => newest.every((id) => ids().includes(id)),
      5000,
      () => `the live endpoint's newest 10 (got ${ids().join(' ')})`,
    );
    assert.ok(Date.now() - t0 < 2000, 'the live endpoint did not wait for the dead one');
    assert.equal(w.counts.dropped, 40);
    await until(() => w.counts.failed >= 1, 5000, 'the dead endpoint given up');
    assert.equal(dead.got.length >= 3, true);
    w.close();
  });
});

describe('webhooks and summaries from a call (serve, a real clip over RTP)', () => {
  let s: Serving;
  let rec: Awaited<ReturnType<typeof receiver>>;
  before(async () => {
    rec = await receiver(() => 200);
    const c = serveTestConfig();
    s = await serve(
      {
        ...c,
        analysis: { ...c.analysis, summaries: { everySeconds: 2 } },
        webhooks: { ...c.webhooks, endpoints: [{ url: rec.url, secret: SECRET, events: [...ALL] }] },
      },
      silentLogger,
    );
  });
  after(async () => {
    await s.close();
    rec.server.closeAllConnections();
    rec.server.close();
  });

  it('the receiver gets signed stream_start, face summaries, stream_end and the room summary; v2 subscribers none of the new', async () => {
    const v3 = await subscribeEvents(s.url, '?room=wh&summaries=1');
    const raw = await subscribeEvents(s.url, '?room=wh');
    const v2 = await subscribeEvents(s.url, '?room=wh&v=2');
    const peer = await TestPeer.open(s.url);
    await peer.request('join', { room: 'wh', name: 'p', consent: true });
    const { producerId, stop } = await publishClip(peer, 5151);
    const emotions = (): number => (v3.got as HubEvent[]).filter((e) => e.type === 'emotion').length;
    await until(
      () => emotions() >= 20,
      90_000,
      () => `20 emotion events (got ${emotions()})`,
    );
    // the page's "calibrate": no baseline before it (off by default), one taken over 3 s after it
    const mine = (): EmotionEvent[] => (v3.got as HubEvent[]).filter((e): e is EmotionEvent => e.type === 'emotion');
    assert.ok(mine().every((e) => e.baseline === undefined));
    assert.equal((await peer.call('calibrate', { producerId, track: 'no-such-face' })).error?.code, 'not_found');
    assert.equal((await peer.call('calibrate', { producerId: 'not-mine' })).error?.code, 'not_found');
    assert.deepEqual(await peer.request('calibrate', { producerId }), { calibrated: true });
    await until(() => mine().some((e) => e.baseline?.state === 'set'), 30_000, 'a baseline that is set');
    const states = mine()
      .filter((e) => e.baseline)
      .map((e) => e.baseline!.state);
    assert.equal(states[0], 'collecting');
    const set = mine().find((e) => e.baseline?.state === 'set')!;
    assert.ok(Math.abs(set.baseline!.valence) < 0.5, 'a face read against its own resting reference is near 0');
    await until(
      () => emotions() >= 60,
      90_000,
      () => `60 emotion events (got ${emotions()})`,
    );
    stop();
    peer.close();
    const got = (): HubEvent[] => rec.got.map((g) => JSON.parse(g.body) as HubEvent);
    await until(
      () => got().some((e) => e.type === 'summary' && e.scope === 'room'),
      30_000,
      () =>
        `the room summary (the receiver got ${got()
          .map((e) => e.type)
          .join(' ')}; reporter ${JSON.stringify(s.sfu?.reporter.health())})`,
    );
    for (const g of rec.got) assert.ok(verifyWebhook(SECRET, g.body, g.headers), 'every delivery is signed');
    const types = got().map((e) => (e.type === 'summary' ? `summary:${e.scope}` : e.type));
    assert.equal(types[0], 'stream_start');
    assert.ok(types.includes('stream_end'));
    assert.ok(types.filter((t) => t === 'summary:face').length >= 2, 'periodic face summaries and the last one');
    assert.ok(!types.includes('emotion'), 'emotion events are not webhooked');
    const room = got().find((e): e is RoomSummaryEvent => e.type === 'summary' && e.scope === 'room')!;
    const asSent: unknown = room;
    assertSchema(asSent);
    assert.equal(room.faces, 1);
    assert.equal(room.streams, 1);
    assert.equal(
      Object.values(room.labelMs).reduce((a, b) => a + b, 0),
      room.analysedMs,
    );
    assert.ok(room.analysedMs > 3000, `analysed ${room.analysedMs} ms`);
    // subscribers: summaries only for those who ask; v2 gets v2 events and no summaries
    await until(
      () => (v3.got as HubEvent[]).some((e) => e.type === 'summary' && e.scope === 'room'),
      10_000,
      'the room summary on /events',
    );
    for (const e of v3.got) assertSchema(e);
    assert.ok(!(raw.got as HubEvent[]).some((e) => e.type === 'summary'));
    assert.ok(v2.got.length > 40);
    for (const e of v2.got) assertSchemaV2(e);
    assert.ok(v2.got.every((e) => e.v === (2 as number) && !('valence' in e)));
    assert.ok(v3.got.some((e) => e.stream === producerId && e.type === 'emotion' && typeof e.valence === 'number'));
    for (const x of [v3, raw, v2]) x.ws.close();
    // counted on /metrics
    const metrics = await (await fetch(`${s.url}/metrics`)).text();
    assert.match(metrics, /arpgnet_webhook_deliveries_total\{outcome="delivered"\} [1-9]/);
  });

  it("a participant's own face selection from its join: a minimum height above its face leaves it unanalysed, counted; a bad setting is refused", async () => {
    const bad = await TestPeer.open(s.url);
    const refused = await bad.call('join', { room: 'picky', name: 'b', consent: true, analysis: { pick: 'nearest' } });
    assert.equal(refused.error?.code, 'bad_request');
    bad.close();
    const sub = await subscribeEvents(s.url, '?room=picky');
    const peer = await TestPeer.open(s.url);
    await peer.request('join', { room: 'picky', name: 'p', consent: true, analysis: { minHeightPx: 2000 } });
    const { producerId, stop } = await publishClip(peer, 6161);
    const end = (): HubEvent | undefined => (sub.got as HubEvent[]).find((e) => e.type === 'stream_end');
    await until(() => sub.got.some((e) => e.type === 'stream_start' && e.stream === producerId), 60_000, 'the stream_start');
    await new Promise((r) => setTimeout(r, 4000));
    stop();
    peer.close();
    await until(() => end() !== undefined, 30_000, 'the stream_end');
    const e = end()!;
    assert.ok(e.type === 'stream_end' && e.stats.facesTooSmall > 5 && e.stats.emotions === 0, JSON.stringify(e));
    assert.equal(sub.got.filter((x) => x.type === 'emotion').length, 0);
    sub.ws.close();
  });
});
