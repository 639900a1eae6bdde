import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { WebSocket } from 'ws';
import { silentLogger } from '../src/log.js';
import { serve, type Serving } from '../src/roles/serve.js';
import { writeFileSync } from 'node:fs';
import { commit, processTree, udpPorts } from '../bench/lib/measure.js';
import { h264Producer } from './call.js';
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
    const h = (await (await fetch(`${s.url}/healthz`)).json()) as {
      sfu: { rooms: number; peers: number; media: Record<string, number>; streams: unknown[] };
      analyser: { streams: unknown[] };
    };
    // placed: streams the SFU sends to an analyser; analysed: decoders and analysis running;
    // udpPorts: sockets of this process, its mediasoup worker and its decoders
    return {
      rooms: h.sfu.rooms,
      peers: h.sfu.peers,
      ...h.sfu.media,
      placed: h.sfu.streams.length,
      analysed: h.analyser.streams.length,
      udpPorts: udpPorts(processTree([process.pid])),
    };
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
  const ZERO = { rooms: 0, peers: 0, routers: 0, transports: 0, producers: 0, consumers: 0, placed: 0, analysed: 0, udpPorts: 0 };

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

  /**
   * A client that uses what the server told it, as a page does: produce on its plain
   * transport, consume another peer's producer on its receiving transport, pause or close
   * its producer. Each request is sent once what it names has been answered; the socket
   * is cut at a random moment whatever is in flight, consenting producers included (their
   * decoders and analysis must go too).
   */
  type Act =
    | { do: 'join'; room: 'p1' | 'p2'; consent: boolean }
    | { do: 'send' | 'recv' | 'plain' | 'produce' | 'consume' | 'pause' | 'closeProducer' | 'leave' }
    | { do: 'consent'; consent: boolean };
  const joinAct = fc.record({
    do: fc.constant('join' as const),
    room: fc.constantFrom('p1' as const, 'p2' as const),
    consent: fc.boolean(),
  });
  // weighted towards what makes media: a plain transport and a producer on it, a receiving transport and a consumer
  const act: fc.Arbitrary<Act> = fc.oneof(
    { arbitrary: joinAct, weight: 1 },
    { arbitrary: fc.constantFrom<Act>({ do: 'plain' }, { do: 'produce' }, { do: 'recv' }, { do: 'consume' }), weight: 6 },
    { arbitrary: fc.constantFrom<Act>({ do: 'send' }, { do: 'pause' }, { do: 'closeProducer' }, { do: 'leave' }), weight: 2 },
    { arbitrary: fc.record({ do: fc.constant('consent' as const), consent: fc.boolean() }), weight: 1 },
  );
  /** A client's life: it joins first (one that never joins is the property above), then anything. */
  const life = fc.tuple(joinAct, fc.array(act, { minLength: 1, maxLength: 10 })).map(([j, rest]): Act[] => [j, ...rest]);

  /** Requests the server answered ok, by method, over the whole property: the model must reach them. */
  const answered: Record<string, number> = {};
  let sent = 0;
  let cuts = 0;

  async function client(acts: Act[], cutAfterMs: number, ssrc: number): Promise<void> {
    const ws = await open();
    let next = 1;
    const replies = new Map<number, (d: Record<string, unknown> | null) => void>();
    const producers: string[] = [];
    ws.on('message', (raw) => {
      const m = JSON.parse(String(raw)) as { id?: number; ok?: boolean; data?: Record<string, unknown>; method?: string };
      if (m.method === 'newProducer' && typeof m.data?.['producerId'] === 'string') producers.push(m.data['producerId']);
      if (typeof m.id === 'number') replies.get(m.id)?.(m.ok ? (m.data ?? {}) : null);
    });
    let cut = false;
    const gone = new Promise<null>((r) => ws.once('close', () => r(null)));
    const timer = setTimeout(() => {
      cut = true;
      ws.terminate();
    }, cutAfterMs);
    const send = (method: string, data: unknown): Promise<Record<string, unknown> | null> => {
      const id = next++;
      const reply = new Promise<Record<string, unknown> | null>((r) =>
        replies.set(id, (d) => {
          if (d) answered[method] = (answered[method] ?? 0) + 1;
          r(d);
        }),
      );
      ws.send(JSON.stringify({ id, method, data }));
      sent++;
      return Promise.race([reply, gone]);
    };
    const id = async (p: Promise<Record<string, unknown> | null> | null): Promise<string | null> => {
      const d = p ? await p : null;
      return typeof d?.['id'] === 'string' ? d['id'] : null;
    };
    let joined: Promise<Record<string, unknown> | null> | null = null;
    let plain: Promise<Record<string, unknown> | null> | null = null;
    let recv: Promise<Record<string, unknown> | null> | null = null;
    let produced: Promise<Record<string, unknown> | null> | null = null;
    for (const a of acts) {
      if (cut) break;
      switch (a.do) {
        case 'join':
          joined = send('join', { room: a.room, name: 'x', consent: a.consent });
          void joined.then((j) => {
            for (const p of (j?.['producers'] as Array<{ producerId: string }> | undefined) ?? []) producers.push(p.producerId);
          });
          break;
        case 'send':
          void send('createWebRtcTransport', { direction: 'send' });
          break;
        case 'recv':
          recv = send('createWebRtcTransport', { direction: 'recv' });
          break;
        case 'plain':
          plain = send('createPlainTransport', {});
          break;
        case 'produce': {
          // as a page does: the transport first, when there is none yet
          plain ??= send('createPlainTransport', {});
          const t = await id(plain);
          if (t && !cut) {
            produced = send('produce', { transportId: t, ...h264Producer(ssrc++) });
            // its own producer can be consumed too (a page previewing what it sends)
            void id(produced).then((p) => p && producers.push(p));
          }
          break;
        }
        case 'consume': {
          recv ??= send('createWebRtcTransport', { direction: 'recv' });
          const t = await id(recv);
          const caps = ((joined ? await joined : null)?.['routerRtpCapabilities'] as object | undefined) ?? null;
          // another peer's newest producer, else its own once that is answered
          const p = producers.at(-1) ?? (await id(produced));
          if (t && caps && p && !cut) void send('consume', { transportId: t, producerId: p, rtpCapabilities: caps });
          break;
        }
        case 'pause':
        case 'closeProducer': {
          const p = await id(produced);
          if (p && !cut) void send(a.do === 'pause' ? 'pauseProducer' : 'closeProducer', { producerId: p });
          break;
        }
        case 'consent':
          void send('setConsent', { consent: a.consent });
          break;
        case 'leave':
          void send('leave', {});
          break;
      }
    }
    await gone;
    clearTimeout(timer);
  }

  it('fast-check: produce and consume too, from 3 clients that use the replies, cut at random moments; everything back at zero', async () => {
    let ssrc = 10_000;
    const t0 = performance.now();
    await fc.assert(
      fc.asyncProperty(
        // cut anywhere from before the join's reply to after the last request's
        fc.array(fc.tuple(life, fc.integer({ min: 0, max: 250 })), { minLength: 1, maxLength: 3 }),
        async (clients) => {
          await Promise.all(clients.map(([acts, cutAfterMs]) => client(acts, cutAfterMs, (ssrc += 100))));
          cuts += clients.length;
          assert.deepEqual(await drained(), ZERO);
        },
      ),
      { numRuns: Number(process.env['FUZZ_RUNS'] ?? 30), seed: Number(process.env['FUZZ_SEED'] ?? 7), verbose: 1 },
    );
    for (const m of ['join', 'createPlainTransport', 'produce', 'consume', 'pauseProducer', 'closeProducer'])
      assert.ok((answered[m] ?? 0) > 0, `the model reached ${m} (answered: ${JSON.stringify(answered)})`);
    // FUZZ_OUT=file.json keeps a long run's numbers (README, Hardening)
    const out = process.env['FUZZ_OUT'];
    if (out) {
      const runs = Number(process.env['FUZZ_RUNS'] ?? 30);
      const seed = Number(process.env['FUZZ_SEED'] ?? 7);
      const command = `FUZZ_RUNS=${runs} FUZZ_SEED=${seed} node --import tsx --test --test-name-pattern "produce and consume" test/leak-close.test.ts`;
      const seconds = Math.round((performance.now() - t0) / 1000);
      writeFileSync(
        out,
        `${JSON.stringify({ command, commit: commit(), runs, seed, seconds, sockets: cuts, messages: sent, answered, end: await left() }, null, 2)}\n`,
      );
    }
  });
});
