import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { WebSocket } from 'ws';
import { EventsClient } from '../src/client/index.js';
import type { HubEvent } from '../src/publish/events.js';
import { clusterConfig, startNats, startRole, type Nats, type RoleProcess } from '../bench/lib/cluster.js';
import { launchChromium, y4mClip } from './browser.js';
import { until } from './call.js';
import { assertSchema } from './helpers.js';

interface SfuHealth {
  sfu: { streams: Array<{ producerId: string; analyser: string | null; pid: number | null; failovers: number }>; analysers: unknown[] };
}
const health = async <T>(url: string): Promise<T> => (await (await fetch(`${url}/healthz`)).json()) as T;
const wsUrl = (p: RoleProcess): string => `${p.url.replace('http', 'ws')}/events`;

describe('scale-out on NATS JetStream: SFU, two analysers and two gateways as separate processes (real nats-server, Chromium)', () => {
  let nats: Nats;
  let sfu: RoleProcess;
  const analysers: RoleProcess[] = [];
  const gateways: RoleProcess[] = [];
  let chrome: Awaited<ReturnType<typeof launchChromium>>;
  before(async () => {
    nats = await startNats();
    const config = clusterConfig();
    gateways.push(...(await Promise.all([startRole('gateway', nats.url, config), startRole('gateway', nats.url, config)])));
    analysers.push(...(await Promise.all([startRole('analyser', nats.url, config), startRole('analyser', nats.url, config)])));
    // the SFU tells the pages where the events are: the gateways
    sfu = await startRole('sfu', nats.url, clusterConfig({ cluster: { eventsUrls: gateways.map(wsUrl) } }));
    chrome = await launchChromium(y4mClip());
  });
  after(async () => {
    await chrome?.close();
    for (const p of [sfu, ...analysers, ...gateways]) await p?.stop();
    await nats?.stop();
  });

  it('a browser participant: events through a gateway; kill -9 of its analyser -> events within 3 s from the other; kill of the gateway -> the subscriber resumes on the second with every event', async () => {
    const seen = async (): Promise<number> => (await health<SfuHealth>(sfu.url)).sfu.analysers.length;
    const t0 = Date.now();
    while ((await seen()) < 2 && Date.now() - t0 < 10_000) await new Promise((r) => setTimeout(r, 100));
    assert.equal(await seen(), 2, 'the SFU sees both analysers');

    const got: HubEvent[] = [];
    const client = new EventsClient({
      url: gateways.map(wsUrl),
      room: 'cluster',
      WebSocket: WebSocket as unknown as ConstructorParameters<typeof EventsClient>[0]['WebSocket'],
      backoff: { initialMs: 100, maxMs: 1000 },
    });
    client.on((e) => got.push(e));
    await until(() => client.state === 'open', 10_000, 'the subscriber on gateway 1');

    const page = await (await chrome.browser.newContext()).newPage();
    try {
      await page.goto(`${sfu.url}/?room=cluster&name=erin&autostart=1&consent=1`);
      await page.waitForSelector('body[data-state="joined"]', { timeout: 30_000 });
      const producer = await page.evaluate(() => document.body.dataset['producer']!);
      await until(() => got.some((e) => e.type === 'emotion' && e.stream === producer), 60_000, 'emotion events through the gateway');
      got.filter((e) => e.type !== 'gap').forEach((e) => assertSchema(e));
      // the page reads them from the gateways the SFU named, and shows the label over the face
      await page.locator(`.tile[data-producer="${producer}"] .face .label`).first().waitFor({ timeout: 30_000 });

      // the analyser holding the stream dies without a word
      const holder = (await health<SfuHealth>(sfu.url)).sfu.streams.find((s) => s.producerId === producer)!;
      assert.ok(holder.pid && analysers.some((a) => a.pid === holder.pid), 'the SFU names the analyser process holding the stream');
      process.kill(holder.pid, 'SIGKILL');
      const killedAt = Date.now();
      const afterFailover = (): HubEvent[] => {
        const i = got.findIndex((e) => e.type === 'stream_end' && e.reason === 'failover');
        return i < 0 ? [] : got.slice(i);
      };
      await until(() => afterFailover().some((e) => e.type === 'emotion'), 15_000, 'emotion events after the failover');
      const resumedMs = Date.now() - killedAt;
      process.stdout.write(`# analyser kill -9 -> events again after ${resumedMs} ms\n`);
      if (process.env['CLUSTER_TIMELINE'])
        for (const p of [sfu, ...analysers])
          for (const l of p.log) {
            const m = /"time":(\d+).*"msg":"([^"]+)"/.exec(l);
            if (m && Number(m[1]) >= killedAt - 100) process.stdout.write(`# +${Number(m[1]) - killedAt} ms ${p.pid}: ${m[2]}\n`);
          }
      assert.ok(resumedMs <= 3000, `events resumed ${resumedMs} ms after the analyser died (limit 3 s)`);
      assert.deepEqual(
        afterFailover()
          .slice(0, 2)
          .map((e) => e.type),
        ['stream_end', 'stream_start'],
        'the failover is said, then the stream starts again',
      );
      const now = (await health<SfuHealth>(sfu.url)).sfu.streams.find((s) => s.producerId === producer)!;
      assert.notEqual(now.pid, holder.pid);
      assert.equal(now.failovers, 1);

      // the gateway dies: the client moves to the second one and resumes from its last seq
      const before = got.length;
      const gw = gateways[0]!;
      gw.proc.kill('SIGKILL');
      await until(() => client.reconnects >= 1 && client.state === 'open', 10_000, 'the subscriber on gateway 2');
      await until(() => got.length > before + 10, 30_000, 'events through gateway 2');
      const seqs = got.map((e) => (e.type === 'gap' ? -1 : (e.seq ?? -1)));
      assert.ok(!got.some((e) => e.type === 'gap'), 'no gap: the log still held everything');
      for (let i = 1; i < seqs.length; i++)
        assert.equal(seqs[i], seqs[i - 1]! + 1, `seq ${seqs[i - 1]} then ${seqs[i]}: contiguous, no duplicates`);
      assert.ok(gateways[1]!.log.length > 0);
    } finally {
      client.close();
      await page.close();
    }
  });

  it('NATS down: the SFU keeps routing and says why on /healthz, analysis pauses, and resumes when NATS is back', async () => {
    const got: HubEvent[] = [];
    const ws = (): EventsClient =>
      new EventsClient({
        url: wsUrl(gateways[1]!),
        room: 'nats-down',
        WebSocket: WebSocket as unknown as ConstructorParameters<typeof EventsClient>[0]['WebSocket'],
        backoff: { initialMs: 100, maxMs: 500 },
      });
    const client = ws();
    client.on((e) => got.push(e));
    const page = await (await chrome.browser.newContext()).newPage();
    try {
      await page.goto(`${sfu.url}/?room=nats-down&name=fay&autostart=1&consent=1`);
      await page.waitForSelector('body[data-state="joined"]', { timeout: 30_000 });
      await until(() => got.some((e) => e.type === 'emotion'), 60_000, 'emotion events before NATS goes');

      await nats.kill();
      await new Promise((r) => setTimeout(r, 1500)); // the roles notice the lost connection
      const h = await fetch(`${sfu.url}/healthz`);
      const body = (await h.json()) as { ok: boolean; degraded: string | null };
      assert.equal(h.status, 200, 'the SFU stays in service');
      assert.equal(body.ok, false);
      assert.match(body.degraded ?? '', /NATS unreachable.*calls are routed, analysis is paused/);
      assert.equal((await fetch(`${gateways[1]!.url}/healthz`)).status, 503, 'a gateway without NATS is out of service');
      assert.equal(await page.evaluate(() => document.body.dataset['state']), 'joined', 'the call goes on');

      await nats.restart();
      const back = got.length;
      const t0 = Date.now();
      await until(() => got.slice(back).some((e) => e.type === 'emotion'), 30_000, 'emotion events after NATS is back');
      process.stdout.write(`# NATS back -> events again after ${Date.now() - t0} ms\n`);
      assert.equal((await fetch(`${sfu.url}/healthz`)).status, 200);
      assert.equal(((await (await fetch(`${sfu.url}/healthz`)).json()) as { ok: boolean }).ok, true);
    } finally {
      client.close();
      await page.close();
    }
  });
});
