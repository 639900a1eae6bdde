import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import type { WebSocket } from 'ws';
import type { Bus } from '../src/bus/bus.js';
import { NatsBus } from '../src/bus/nats.js';
import { silentLogger } from '../src/log.js';
import type { HubEvent, PipelineEvent } from '../src/publish/events.js';
import { logRetention, serve, type Serving } from '../src/roles/serve.js';
import { clusterConfig, startNats, startRole, type Nats, type RoleProcess } from '../bench/lib/cluster.js';
import { publishClip, subscribeEvents, TestPeer, until } from './call.js';
import { serveTestConfig } from './helpers.js';

/**
 * One suite, three ways to run the same roles: `serve` as it starts with no flags (role
 * all), `serve --role sfu,analyser,gateway` on the in-process bus, and the three roles as
 * separate processes on a real NATS server. Each behaviour below was missing from one of
 * the two servers this replaced (the single box or the roles).
 */
interface Setup {
  /** Serves /signaling and the pages. */
  sfu: string;
  /** Serves /events. */
  events: string;
  /** Every process, with its roles. */
  processes: Array<{ url: string; roles: string[] }>;
  /** Writes events straight into the room logs, as an analyser would. */
  writer: Bus;
  stop(): Promise<void>;
}

const MAX_QUEUE = 64;

async function inProcess(roles: string[]): Promise<Setup> {
  const c = serveTestConfig();
  const s: Serving = await serve(
    { ...c, publish: { ...c.publish, maxQueue: MAX_QUEUE }, cluster: { ...c.cluster, roles: roles as Serving['roles'] } },
    silentLogger,
  );
  return { sfu: s.url, events: s.url, processes: [{ url: s.url, roles: s.roles }], writer: s.bus, stop: () => s.close() };
}

async function onNats(): Promise<Setup> {
  const nats: Nats = await startNats();
  const config = clusterConfig({ publish: { maxQueue: MAX_QUEUE } });
  const procs: RoleProcess[] = [];
  try {
    procs.push(...(await Promise.all(['gateway', 'analyser'].map((r) => startRole(r, nats.url, config)))));
    procs.push(await startRole('sfu', nats.url, config));
  } catch (e) {
    for (const p of procs) await p.stop();
    await nats.stop();
    throw e;
  }
  const [gateway, analyser, sfu] = procs as [RoleProcess, RoleProcess, RoleProcess];
  const writer = await NatsBus.open(nats.url, 'one-server test writer', logRetention(serveTestConfig()), silentLogger);
  return {
    sfu: sfu.url,
    events: gateway.url,
    processes: [
      { url: sfu.url, roles: ['sfu'] },
      { url: analyser.url, roles: ['analyser'] },
      { url: gateway.url, roles: ['gateway'] },
    ],
    writer,
    stop: async () => {
      await writer.close();
      for (const p of procs.reverse()) await p.stop();
      await nats.stop();
    },
  };
}

const metric = (text: string, name: string): number | null => {
  const m = new RegExp(`^${name.replace(/[{}"=]/g, '\\$&')} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : null;
};

function suite(name: string, start: () => Promise<Setup>): void {
  describe(`one server: ${name}`, () => {
    let x: Setup;
    let peer: TestPeer | null = null;
    let sender: ChildProcess | null = null;
    let producer = '';
    const subs: WebSocket[] = [];
    const sub = async (q: string): Promise<{ ws: WebSocket; got: PipelineEvent[] }> => {
      const s = await subscribeEvents(x.events, q);
      subs.push(s.ws);
      return s;
    };
    before(async () => {
      x = await start();
      const first = await sub('?room=one');
      peer = await TestPeer.open(x.sfu);
      await peer.request('join', { room: 'one', name: 'una', consent: true });
      const p = await publishClip(peer, 6161);
      sender = p.sender;
      producer = p.producerId;
      await until(() => first.got.some((e) => e.stream === producer && e.type === 'emotion'), 90_000, 'the participant analysed');
    });
    after(async () => {
      for (const ws of subs) ws.terminate();
      sender?.kill('SIGKILL');
      peer?.close();
      await x?.stop();
    });

    it('/healthz: one shape on every role (identity, bus, connections, a section per role)', async () => {
      for (const p of x.processes) {
        const r = await fetch(`${p.url}/healthz`);
        assert.equal(r.status, 200);
        const h = (await r.json()) as Record<string, unknown>;
        assert.equal(h['ok'], true);
        assert.equal(typeof h['id'], 'string');
        assert.equal(typeof h['pid'], 'number');
        assert.deepEqual(h['roles'], p.roles);
        assert.equal(typeof h['bus'], 'object');
        assert.equal(typeof h['connections'], 'number');
        for (const role of p.roles) assert.equal(typeof h[role], 'object', `${p.url} has its ${role} section`);
      }
    });

    it('/metrics on every role, each with what its role owns', async () => {
      const owned: Record<string, string> = {
        sfu: 'arpgnet_rooms',
        analyser: 'arpgnet_frames_total{state="analysed"}',
        gateway: 'arpgnet_subscribers',
      };
      for (const p of x.processes) {
        const r = await fetch(`${p.url}/metrics`);
        assert.equal(r.status, 200);
        const text = await r.text();
        assert.ok((metric(text, 'arpgnet_process_resident_memory_bytes') ?? 0) > 0, `${p.url}: process metrics`);
        for (const role of p.roles) assert.ok((metric(text, owned[role]!) ?? 0) > 0, `${p.url}: ${owned[role]} for its ${role} role`);
      }
    });

    it('a late subscriber first gets the stream_start of the running stream', async () => {
      const late = await sub('?room=one');
      await until(() => late.got.some((e) => e.stream === producer && e.type === 'emotion'), 30_000, 'events for the late subscriber');
      const mine = late.got.filter((e) => e.stream === producer);
      assert.equal(mine[0]?.type, 'stream_start', `first event ${mine[0]?.type}`);
      assert.ok(mine[0]?.type === 'stream_start' && mine[0].source.width > 0);
    });

    it('a subscriber without ?room= gets every room', async () => {
      const all = await sub('');
      await until(() => all.got.some((e) => e.stream === producer && e.type === 'emotion'), 30_000, 'events without a room filter');
    });

    it('?actions=1 turns facial actions on for the running stream', async () => {
      const withActions = await sub('?room=one&actions=1');
      await until(
        () => withActions.got.some((e) => e.stream === producer && e.type === 'emotion' && Object.keys(e.actions ?? {}).length >= 50),
        40_000,
        'emotion events with facial actions',
      );
    });

    it('a subscriber that stops reading loses its oldest events, is told by a gap, and the counts add up', async () => {
      const slow = await sub('?room=slow');
      const flood = (ts: number, message: string): Promise<number> =>
        x.writer.publishEvent({
          v: 3,
          type: 'error',
          stream: 'flood',
          room: 'slow',
          ts,
          wallTime: new Date().toISOString(),
          code: 'test',
          message,
          fatal: false,
        });
      // the gateway's reader opens a moment after the socket does (on NATS, a consumer is
      // made): knocked until an event comes through; everything after that is counted
      const t0 = Date.now();
      while (!slow.got.some((e) => e.stream === 'flood')) {
        if (Date.now() - t0 > 20_000) throw new Error('the subscriber never started reading');
        await flood(-1, 'ready');
        await new Promise((r) => setTimeout(r, 200));
      }
      await new Promise((r) => setTimeout(r, 300));
      const ready = Math.max(...slow.got.filter((e) => e.stream === 'flood').map((e) => e.seq ?? 0));
      const socket = (slow.ws as unknown as { _socket: { pause(): void; resume(): void } })._socket;
      socket.pause();
      const pad = 'x'.repeat(4000);
      const n = 6000;
      for (let i = 0; i < n; i++) await flood(i, pad);
      await new Promise((r) => setTimeout(r, 500));
      socket.resume();
      const got = (slow.got as HubEvent[]).filter(
        (e) => e.type === 'gap' || ('stream' in e && e.stream === 'flood' && e.ts >= 0 && (e.seq ?? 0) > ready),
      );
      const covered = (): number => got.reduce((a, e) => a + (e.type === 'gap' ? e.to - e.from + 1 : 1), 0);
      await until(
        () => {
          got.splice(
            0,
            got.length,
            ...(slow.got as HubEvent[]).filter(
              (e) => e.type === 'gap' || ('stream' in e && e.stream === 'flood' && e.ts >= 0 && (e.seq ?? 0) > ready),
            ),
          );
          return covered() === n;
        },
        30_000,
        () => `every event received or named by a gap (${covered()} of ${n})`,
      );
      const gaps = got.filter((e) => e.type === 'gap');
      // dropped from the subscriber's queue; where the log itself let them go first, expired
      assert.ok(
        gaps.some((g) => g.type === 'gap' && g.reason === 'dropped'),
        'dropped, and said so',
      );
      const seqs = got.map((e) => (e.type === 'gap' ? e.to : (e.seq ?? 0)));
      seqs.forEach((q, i) => i === 0 || assert.ok(q > seqs[i - 1]!, 'in order, none twice'));
      const gw = x.processes.find((p) => p.roles.includes('gateway'))!;
      const dropped = metric(await (await fetch(`${gw.url}/metrics`)).text(), 'arpgnet_events_dropped_total{reason="slow_client"}');
      assert.ok((dropped ?? 0) > 0, 'counted on /metrics');
    });
  });
}

suite('serve with no flags (every role in one process, in-process bus)', () => inProcess(['all']));
suite('serve --role sfu,analyser,gateway (in-process bus)', () => inProcess(['sfu', 'analyser', 'gateway']));
suite('sfu, analyser and gateway as processes on NATS JetStream', onNats);
