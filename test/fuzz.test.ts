import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { WebSocket } from 'ws';
import { silentLogger } from '../src/log.js';
import { startServer, type Serving } from '../src/serve/server.js';
import { analysedSender, h264Producer, until } from './call.js';
import { serveTestConfig } from './helpers.js';

/** Cases per property: a few hundred in CI; FUZZ_RUNS=10000 for the long form. */
const RUNS = Number(process.env['FUZZ_RUNS'] ?? 200);

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
  const ws = new WebSocket(`${base.replace('http', 'ws')}/signaling`);
  const answers: Array<Record<string, unknown>> = [];
  ws.on('message', (d) => {
    const m = JSON.parse(String(d)) as Record<string, unknown>;
    if (!m['notification']) answers.push(m);
  });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  try {
    for (const [i, m] of msgs.entries()) {
      ws.send(m);
      await until(() => answers.length > i || ws.readyState !== WebSocket.OPEN, 5000, `an answer to ${m.slice(0, 120)}`);
      if (ws.readyState !== WebSocket.OPEN) return; // a join refused for its token may close; none here
      const a = answers[i]!;
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
    s = await startServer(serveTestConfig(), silentLogger);
  });
  after(async () => {
    sender?.kill('SIGKILL');
    await s?.close();
  });

  it(`${RUNS} sessions: every message answered to its sender alone; a healthy stream keeps flowing; nothing leaks`, async () => {
    const healthy = await analysedSender(s.url, 'fz', 5151);
    const { sub, producerId: goodProducer, peer: good } = healthy;
    sender = healthy.sender;
    const emotions = (): number => sub.got.filter((e) => e.stream === goodProducer && e.type === 'emotion').length;
    const rooms0 = s.rooms.size;
    const before = emotions();
    const rss0 = process.memoryUsage().rss;

    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.nat(), { minLength: 1, maxLength: 8 }).chain((ids) => fc.tuple(...ids.map((_, i) => message(i + 1)))),
        (msgs) => session(s.url, msgs),
      ),
      { numRuns: RUNS, seed: Number(process.env['FUZZ_SEED'] ?? 42) },
    );

    await until(() => s.rooms.size === rooms0, 5000, 'the fuzzed rooms to close');
    await until(() => emotions() > before + 3, 30_000, 'the healthy stream to go on');
    assert.ok(s.live.isAnalysed(goodProducer), 'the healthy stream is still analysed');
    assert.deepEqual(good.stray, [], 'no error reached the healthy peer');
    const grew = (process.memoryUsage().rss - rss0) / 2 ** 20;
    process.stderr.write(`fuzz: ${RUNS} sessions, rooms back to ${s.rooms.size}, RSS +${grew.toFixed(1)} MB\n`);
    assert.ok(grew < 200, `RSS grew ${grew.toFixed(1)} MB`);
    good.close();
    sub.ws.close();
  });
});
