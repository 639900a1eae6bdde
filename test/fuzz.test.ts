import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { WebSocket } from 'ws';
import { createLogger, silentLogger } from '../src/log.js';
import { Authenticator } from '../src/host/auth.js';
import { serve, serveEvents, type Serving } from '../src/roles/serve.js';
import { analysedSender, h264Producer, publishClip, subscribeEvents, TestPeer, until, type PlainTransportInfo } from './call.js';
import { seeded, UdpRelay } from '../bench/lib/udp-relay.js';
import { serveTestConfig } from './helpers.js';

/** Cases per property: a few hundred in CI; FUZZ_RUNS=10000 for the long form (FUZZ_OUT=file.json keeps its numbers). */
const RUNS = Number(process.env['FUZZ_RUNS'] ?? 200);
const SEED = Number(process.env['FUZZ_SEED'] ?? 42);

/** What the long form reports: cases, how each was refused, memory before and after. */
const summary = {
  runs: RUNS,
  seed: SEED,
  signaling: { sessions: 0, messages: 0, replies: { ok: 0 } as Record<string, number>, timerGrowth: 0 },
  events: { connections: 0, closes: {} as Record<string, number> },
  eventsAuth: { connections: 0, closes: {} as Record<string, number> },
  http: { requests: 0, statuses: {} as Record<string, number> },
  rssMB: { start: 0, end: 0 },
  heapMB: { start: 0, end: 0 },
};
const bump = (m: Record<string, number>, k: string | number): void => void (m[String(k)] = (m[String(k)] ?? 0) + 1);
const mb = (n: number): number => Math.round((n / 2 ** 20) * 10) / 10;

const METHODS = [
  'join',
  'setConsent',
  'createWebRtcTransport',
  'createPlainTransport',
  'connectWebRtcTransport',
  'produce',
  'consume',
  'resumeConsumer',
  'pauseProducer',
  'resumeProducer',
  'closeProducer',
  'leave',
  'bogus',
  '',
  '__proto__',
];

/** Requests that are almost right as often as they are wrong: the parser and the handlers both get hit. */
const message = (id: number): fc.Arbitrary<string> =>
  fc.oneof(
    fc.string({ maxLength: 200 }),
    fc.jsonValue({ maxDepth: 6 }).map((v) => JSON.stringify(v)),
    fc
      .record({
        method: fc.constantFrom(...METHODS),
        data: fc.oneof(
          fc.jsonValue({ maxDepth: 4 }),
          fc.record(
            {
              room: fc.oneof(fc.constant('fz'), fc.stringMatching(/^[\w.-]{1,12}$/), fc.string()),
              name: fc.string({ maxLength: 80 }),
              consent: fc.oneof(fc.boolean(), fc.jsonValue()),
              direction: fc.constantFrom('send', 'recv', 'up'),
              transportId: fc.oneof(fc.uuid(), fc.string()),
              producerId: fc.oneof(fc.uuid(), fc.string()),
              consumerId: fc.uuid(),
              kind: fc.constantFrom('audio', 'video', 'data'),
              rtpParameters: fc.oneof(fc.jsonValue({ maxDepth: 3 }), fc.constant(h264Producer(7).rtpParameters)),
              rtpCapabilities: fc.jsonValue({ maxDepth: 3 }),
              dtlsParameters: fc.jsonValue({ maxDepth: 3 }),
            },
            { requiredKeys: [] },
          ),
        ),
        huge: fc.boolean(),
      })
      .map(({ method, data, huge }) => JSON.stringify({ id: huge ? Number.MAX_SAFE_INTEGER : id, method, data })),
  );

/** Sends each message and waits for its answer; every answer must be a reply or an error, never silence. */
async function session(base: string, msgs: string[]): Promise<void> {
  summary.signaling.sessions++;
  const ws = new WebSocket(`${base.replace('http', 'ws')}/signaling`);
  const answers: Array<Record<string, unknown>> = [];
  let arrived: () => void = () => undefined;
  ws.on('message', (d) => {
    const m = JSON.parse(String(d)) as Record<string, unknown>;
    if (!m['notification']) answers.push(m);
    arrived();
  });
  ws.on('close', () => arrived());
  // the next answer, or the socket's end, or five seconds of silence (a failure)
  const answer = (i: number, what: string): Promise<void> =>
    new Promise((resolve, reject) => {
      const check = (): boolean => answers.length > i || ws.readyState !== WebSocket.OPEN;
      if (check()) return resolve();
      const timer = setTimeout(() => reject(new Error(`no answer to ${what}`)), 5000);
      arrived = () => {
        if (!check()) return;
        clearTimeout(timer);
        resolve();
      };
    });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  try {
    for (const [i, m] of msgs.entries()) {
      ws.send(m);
      await answer(i, m.slice(0, 120));
      if (ws.readyState !== WebSocket.OPEN) return; // a join refused for its token may close; none here
      const a = answers[i]!;
      summary.signaling.messages++;
      bump(summary.signaling.replies, a['ok'] === true ? 'ok' : String((a['error'] as { code?: unknown })?.code));
      assert.ok(a['ok'] === true || (a['ok'] === false && typeof (a['error'] as { code?: unknown })?.code === 'string'), JSON.stringify(a));
    }
  } finally {
    ws.close();
  }
}

describe('signaling fuzzed with random and mutated messages (fast-check)', () => {
  let s: Serving;
  let sender: ChildProcess | null = null;
  before(async () => {
    s = await serve(serveTestConfig(), process.env['TEST_LOG'] ? createLogger() : silentLogger);
    summary.rssMB.start = mb(process.memoryUsage().rss);
    summary.heapMB.start = mb(process.memoryUsage().heapUsed);
  });
  after(async () => {
    sender?.kill('SIGKILL');
    await s?.close();
    global.gc?.();
    summary.rssMB.end = mb(process.memoryUsage().rss);
    summary.heapMB.end = mb(process.memoryUsage().heapUsed);
    process.stderr.write(`fuzz summary: ${JSON.stringify(summary)}\n`);
    const out = process.env['FUZZ_OUT'];
    if (out)
      writeFileSync(
        out,
        `${JSON.stringify({ command: `FUZZ_RUNS=${RUNS} FUZZ_SEED=${SEED} node --import tsx --test test/fuzz.test.ts`, ...summary }, null, 2)}\n`,
      );
  });

  it(`${RUNS} sessions: every message answered to its sender alone; a healthy stream keeps flowing; nothing leaks`, async () => {
    const healthy = await analysedSender(s.url, 'fz', 5151);
    const { sub, producerId: goodProducer, peer: good } = healthy;
    sender = healthy.sender;
    const emotions = (): number => sub.got.filter((e) => e.stream === goodProducer && e.type === 'emotion').length;
    const rooms0 = s.sfu!.rooms.size;
    const media = async (): Promise<Record<string, number>> =>
      ((await (await fetch(`${s.url}/healthz`)).json()) as { sfu: { media: Record<string, number> } }).sfu.media;
    const timers = (): number => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const media0 = await media();
    const timers0 = timers();
    const before = emotions();
    const rss0 = process.memoryUsage().rss;

    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.nat(), { minLength: 1, maxLength: 8 }).chain((ids) => fc.tuple(...ids.map((_, i) => message(i + 1)))),
        (msgs) => session(s.url, msgs),
      ),
      { numRuns: RUNS, seed: SEED },
    );

    await until(() => s.sfu!.rooms.size === rooms0, 5000, 'the fuzzed rooms to close');
    // every transport, producer and consumer the fuzzed sessions made is gone again
    assert.deepEqual(await media(), media0);
    const timerGrowth = timers() - timers0;
    summary.signaling.timerGrowth = timerGrowth;
    assert.ok(timerGrowth <= 5, `${timerGrowth} more timers than before the fuzzing`);
    await until(() => emotions() > before + 3, 30_000, 'the healthy stream to go on');
    assert.ok(s.sfu!.placement.isAnalysed(goodProducer), 'the healthy stream is still analysed');
    assert.deepEqual(good.stray, [], 'no error reached the healthy peer');
    const grew = (process.memoryUsage().rss - rss0) / 2 ** 20;
    process.stderr.write(`fuzz: ${RUNS} sessions, rooms back to ${s.sfu!.rooms.size}, RSS +${grew.toFixed(1)} MB\n`);
    assert.ok(grew < 200, `RSS grew ${grew.toFixed(1)} MB`);
    good.close();
    sub.ws.close();
  });

  it(`${RUNS} /events connections with random queries and first messages: each accepted or closed with a reason; nothing leaks`, async () => {
    const base = s.url.replace('http', 'ws');
    await new Promise((r) => setTimeout(r, 300)); // the last test's sockets finish closing
    const hub0 = s.gateway!.size;
    const conns0 = s.limits.connections;
    const query = fc
      .array(
        fc.tuple(
          fc.constantFrom('room', 'stream', 'resume', 'v', 'actions', 'token', 'x', ''),
          fc.oneof(fc.constantFrom('fz', '1', '2', '0', '-1', '1e9', '99999999999999999999', 'NaN', ''), fc.string({ maxLength: 40 })),
        ),
        { maxLength: 5 },
      )
      .map((kv) => new URLSearchParams(kv).toString());
    const frames = fc.array(
      fc.oneof(
        fc.string({ maxLength: 300 }),
        fc.jsonValue({ maxDepth: 8 }).map((v) => JSON.stringify(v)),
      ),
      { maxLength: 3 },
    );
    await fc.assert(
      fc.asyncProperty(query, frames, async (q, msgs) => {
        summary.events.connections++;
        const ws = new WebSocket(`${base}/events?${q}`);
        const closed = new Promise<number>((r) => ws.once('close', (code) => r(code)));
        ws.on('error', () => undefined);
        await new Promise<void>((r) => {
          ws.once('open', () => r());
          ws.once('close', () => r());
        });
        for (const m of msgs) if (ws.readyState === WebSocket.OPEN) ws.send(m);
        await new Promise((r) => setTimeout(r, 5));
        const early = ws.readyState !== WebSocket.OPEN;
        ws.close();
        const code = await closed;
        bump(summary.events.closes, early ? code : 'accepted');
        // a refusal names its reason (4400 malformed); an accepted subscriber just ends with ours
        assert.ok([1000, 1005, 1006, 4400].includes(code), `close code ${code} for ?${q}`);
      }),
      { numRuns: RUNS, seed: SEED },
    );
    await until(
      () => s.gateway!.size === hub0 && s.limits.connections === conns0,
      5000,
      `the fuzzed subscribers to be gone (subscribers ${s.gateway!.size} of ${hub0}, connections ${s.limits.connections} of ${conns0})`,
    );
  });

  it(`${RUNS} /events connections with auth on: random and real-but-wrong tokens are refused with their close code`, async () => {
    const auth = new Authenticator('fuzz-secret-fuzz-secret-fuzz-secret!', true);
    const c = serveTestConfig();
    const hub = await serveEvents({ ...c, publish: { ...c.publish, maxQueue: 16, ringSize: 64 } }, silentLogger, 0, {
      auth,
      highWaterBytes: 1 << 16,
    });
    const url = `${hub.url.replace('http', 'ws')}/events`;
    const good = await auth.sign({ room: 'fz', identity: 'fuzzer', grants: ['subscribe'], ttlSeconds: 60 });
    const joinOnly = await auth.sign({ room: 'fz', identity: 'fuzzer', grants: ['join'], ttlSeconds: 60 });
    const otherRoom = await auth.sign({ room: 'elsewhere', identity: 'fuzzer', grants: ['subscribe'], ttlSeconds: 60 });
    const token = fc.oneof(
      fc.string({ maxLength: 200 }),
      fc.constantFrom(good, joinOnly, otherRoom, good.slice(0, -3) + 'AAA', good.replace(/\./g, '')),
      fc.jsonValue({ maxDepth: 3 }),
    );
    const first = fc.oneof(
      token.map((t) => JSON.stringify({ type: 'auth', token: t })),
      fc.string({ maxLength: 200 }),
      fc.jsonValue({ maxDepth: 6 }).map((v) => JSON.stringify(v)),
    );
    try {
      await fc.assert(
        fc.asyncProperty(first, fc.constantFrom('?room=fz', '', '?room=elsewhere'), async (msg, q) => {
          summary.eventsAuth.connections++;
          const ws = new WebSocket(`${url}${q}`);
          const closed = new Promise<number>((r) => ws.once('close', (code) => r(code)));
          ws.on('error', () => undefined);
          await new Promise<void>((r) => ws.once('open', () => r()));
          ws.send(msg);
          const code = await Promise.race([closed, new Promise<number>((r) => setTimeout(() => r(0), 300))]);
          bump(summary.eventsAuth.closes, code || 'accepted');
          if (code === 0) {
            // only the good token for this room (or an unfiltered subscriber narrowed to its room) gets in
            const ok = (msg.includes(good) && q !== '?room=elsewhere') || (msg.includes(otherRoom) && q !== '?room=fz');
            assert.ok(ok, `accepted ${msg.slice(0, 80)} on ${q}`);
            ws.close();
            await closed;
          } else assert.ok([4401, 4402, 4403, 4404].includes(code), `close code ${code}`);
        }),
        { numRuns: RUNS, seed: SEED },
      );
      await until(() => hub.gateway.size === 0, 5000, 'every subscriber gone');
    } finally {
      await hub.close();
    }
  });

  it('request targets that URL parsing rejects (found by the long fuzz run): answered or closed, the server stays up', async () => {
    const { port } = new URL(s.url);
    // a throw in a request listener is an uncaught exception: in production the process dies
    const uncaught: unknown[] = [];
    const onUncaught = (e: unknown): void => void uncaught.push(e);
    process.prependListener('uncaughtException', onUncaught);
    const raw = (text: string): Promise<string> =>
      new Promise((resolve) => {
        const sock = connect(Number(port), '127.0.0.1');
        let got = '';
        sock.on('data', (d) => (got += d.toString('latin1')));
        sock.on('error', () => resolve(got));
        sock.on('close', () => resolve(got));
        sock.end(text);
        setTimeout(() => sock.destroy(), 1000);
      });
    for (const target of ['//[', '//a b/', '//[::1', 'http://[']) {
      const plain = await raw(`GET ${target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
      assert.ok(plain === '' || /^HTTP\/1\.1 4\d\d/.test(plain), `GET ${target}: ${plain.slice(0, 40)}`);
      const upgrade = await raw(
        `GET ${target} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`,
      );
      assert.ok(!/^HTTP\/1\.1 101/.test(upgrade), `upgrade ${target} was accepted`);
    }
    process.removeListener('uncaughtException', onUncaught);
    assert.deepEqual(uncaught.map(String), [], 'no listener threw');
    assert.equal((await fetch(`${s.url}/healthz`)).status, 200, 'the server is still up');
  });

  it(`${RUNS} raw HTTP requests and random bytes: every one answered 4xx/2xx or closed, nothing read outside the web folder`, async () => {
    const { port } = new URL(s.url);
    const path = fc.oneof(
      fc.constantFrom('/', '/kiosk', '/healthz', '/metrics', '/../package.json', '/%2e%2e/%2e%2e/etc/passwd', '//etc/passwd'),
      fc.constantFrom('/..%2f..%2fpackage.json', '/assets/..%5c..%5cpackage.json', '/%00', '/kiosk/../../README.md', '/C:\\windows'),
      fc.string({ maxLength: 300 }).map((p) => `/${p}`),
      fc.stringMatching(/^\/[\w./%-]{0,60}$/),
    );
    const req = fc.oneof(
      fc
        .record({
          method: fc.constantFrom('GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'TRACE', 'BREW', 'G\0T'),
          path,
          headers: fc.array(fc.tuple(fc.stringMatching(/^[\w-]{1,20}$/), fc.string({ maxLength: 100 })), { maxLength: 4 }),
          version: fc.constantFrom('HTTP/1.1', 'HTTP/1.0', 'HTTP/2.0', 'HTTP/9', ''),
        })
        .map(
          ({ method, path: p, headers, version }) =>
            `${method} ${p} ${version}\r\nHost: x\r\n${headers.map(([k, v]) => `${k}: ${v}`).join('\r\n')}\r\n\r\n`,
        ),
      fc.uint8Array({ maxLength: 2000 }).map((b) => Buffer.from(b).toString('latin1')),
    );
    await fc.assert(
      fc.asyncProperty(req, async (raw) => {
        summary.http.requests++;
        const reply = await new Promise<string>((resolve) => {
          const sock = connect(Number(port), '127.0.0.1');
          let got = '';
          sock.on('data', (d) => (got += d.toString('latin1')));
          sock.on('error', () => resolve(got));
          sock.on('close', () => resolve(got));
          // half-closed after the request: the server answers what it has (or closes) without waiting for more
          sock.end(Buffer.from(raw, 'latin1'));
          setTimeout(() => sock.destroy(), 1000);
        });
        const status = /^HTTP\/1\.[01] (\d{3})/.exec(reply)?.[1] ?? 'closed';
        bump(summary.http.statuses, status);
        assert.ok(status === 'closed' || /^[234]\d\d$/.test(status), `status ${status} for ${JSON.stringify(raw.slice(0, 100))}`);
        assert.ok(
          !/"name": "arpgnet-edge"|root:x:0:0|# arpgnet-edge/.test(reply),
          `a file outside the web folder was served for ${JSON.stringify(raw.slice(0, 100))}`,
        );
      }),
      { numRuns: RUNS, seed: SEED },
    );
    const h = await fetch(`${s.url}/healthz`);
    assert.equal(h.status, 200);
  });

  it(
    'garbage and truncated RTP on an analysed stream: the stream survives and analysis recovers once good packets return',
    { timeout: 180_000 },
    async () => {
      const sub = await subscribeEvents(s.url, '?room=rtp-garbage');
      const peer = await TestPeer.open(s.url);
      await peer.request('join', { room: 'rtp-garbage', name: 'noisy', consent: true });
      const t = await peer.request<PlainTransportInfo>('createPlainTransport');
      // the relay forwards from one address, so mediasoup (comedia) takes its garbage as this stream's own
      const relay = await UdpRelay.open({ ip: t.ip, port: t.port });
      const ssrc = 6161;
      const { producerId, sender: rtp } = await publishClip(peer, ssrc, { transport: t, to: { ip: '127.0.0.1', port: relay.port } });
      try {
        const emotions = (): number => sub.got.filter((e) => e.stream === producerId && e.type === 'emotion').length;
        await until(() => emotions() > 0, 60_000, 'first emotion event');

        // four seconds of damage: every packet is truncated, has its payload replaced or is passed, and
        // random datagrams and RTP headers of this SSRC with random payloads are injected between them
        const rand = seeded(7);
        const bytes = (n: number): Buffer => Buffer.from(Array.from({ length: n }, () => Math.floor(rand() * 256)));
        relay.transform = (b) => {
          const r = rand();
          if (r < 0.3) return b.subarray(0, 12 + Math.floor(rand() * Math.max(1, b.length - 12)));
          if (r < 0.6) return Buffer.concat([b.subarray(0, 12), bytes(b.length - 12)]);
          return b;
        };
        const noise = setInterval(() => {
          relay.inject(bytes(1 + Math.floor(rand() * 1400)));
          const header = Buffer.alloc(12);
          header[0] = 0x80;
          header[1] = 102; // the stream's payload type
          header.writeUInt16BE(Math.floor(rand() * 65536), 2);
          header.writeUInt32BE(Math.floor(rand() * 2 ** 32), 4);
          header.writeUInt32BE(ssrc, 8);
          relay.inject(Buffer.concat([header, bytes(Math.floor(rand() * 1200))]));
        }, 5);
        await new Promise((r) => setTimeout(r, 4000));
        clearInterval(noise);
        relay.transform = null;
        const afterDamage = emotions();

        await until(() => emotions() > afterDamage + 5, 60_000, 'emotion events once good packets are back');
        assert.ok(s.sfu!.placement.isAnalysed(producerId), 'the same stream is still analysed');
        assert.equal(sub.got.filter((e) => e.stream === producerId && e.type === 'stream_end').length, 0, 'the stream never ended');
        assert.ok(relay.stats.injected > 500, `${relay.stats.injected} datagrams injected`);
        const st = s.analyser!.streams().find((x) => x.stream === producerId)!;
        process.stderr.write(
          `rtp garbage: ${relay.stats.injected} injected, ${relay.stats.forwarded} forwarded; decoder restarts ${st.restarts}; events ${afterDamage} -> ${emotions()}\n`,
        );
      } finally {
        rtp.kill('SIGKILL');
        relay.close();
        peer.close();
        sub.ws.close();
      }
    },
  );
});
