import assert from 'node:assert/strict';
import { closeSync, existsSync, openSync, readSync, statSync, watch, type FSWatcher } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createLogger, silentLogger } from '../src/log.js';
import { serve, type Serving } from '../src/roles/serve.js';
import { launchChromium, y4mClip } from './browser.js';
import { subscribeEvents, until } from './call.js';
import { ROOT, serveTestConfig } from './helpers.js';

interface Health {
  workerPids: number[];
  workerDeaths: number;
  roomsRebuilt: number;
}
const health = async (url: string): Promise<Health> => ((await (await fetch(`${url}/healthz`)).json()) as { sfu: Health }).sfu;

/** Image and video containers by their first bytes: what a stored frame or face crop would start with. */
const MEDIA_MAGIC: Array<[string, number[]]> = [
  ['png', [0x89, 0x50, 0x4e, 0x47]],
  ['jpeg', [0xff, 0xd8, 0xff]],
  ['y4m', [0x59, 0x55, 0x56, 0x34]],
  ['webm/mkv', [0x1a, 0x45, 0xdf, 0xa3]],
  ['riff', [0x52, 0x49, 0x46, 0x46]],
];
function mediaKind(path: string): string | null {
  try {
    if (!statSync(path).isFile()) return null;
    const b = Buffer.alloc(12);
    const fd = openSync(path, 'r');
    const n = readSync(fd, b, 0, 12, 0);
    closeSync(fd);
    for (const [kind, magic] of MEDIA_MAGIC) if (n >= magic.length && magic.every((x, i) => b[i] === x)) return kind;
    if (n >= 8 && b.toString('latin1', 4, 8) === 'ftyp') return 'mp4';
  } catch {
    // written and gone again: judged by its name below
  }
  return /\.(png|jpe?g|y4m|yuv|rgba?|raw|webm|mp4|mkv|h264|ivf)$/i.test(path) ? 'by name' : null;
}

/** Every file written under the watched folders while the call runs, except the browser's own profile. */
function watchWrites(dirs: string[], ignore: RegExp): { files: Set<string>; close: () => void } {
  const files = new Set<string>();
  const watchers: FSWatcher[] = dirs
    .filter((d) => existsSync(d))
    .map((d) =>
      watch(d, { recursive: true }, (_e, f) => {
        if (!f) return;
        const p = join(d, f.toString());
        if (!ignore.test(p)) files.add(p);
      }),
    );
  return { files, close: () => watchers.forEach((w) => w.close()) };
}

describe('serve: self-healing in a real browser (headless Debian Chromium, a face clip as camera)', () => {
  let s: Serving;
  let chrome: Awaited<ReturnType<typeof launchChromium>>;
  before(async () => {
    s = await serve(serveTestConfig(), process.env['TEST_LOG'] ? createLogger() : silentLogger);
    chrome = await launchChromium(y4mClip());
  });
  after(async () => {
    await chrome?.close();
    await s?.close();
  });

  it('mediasoup worker SIGKILL mid-call: the page rejoins by itself and events resume within 10 s; no frame reaches the disk', async () => {
    const fsw = watchWrites([ROOT, tmpdir(), '/dev/shm'], /arpgnet-chromium-|\/node_modules\/|\/\.git\//);
    const sub = await subscribeEvents(s.url, '?room=heal');
    const page = await (await chrome.browser.newContext()).newPage();
    const logs: string[] = [];
    page.on('console', (m) => logs.push(m.text()));
    try {
      await page.goto(`${s.url}/?room=heal&name=carol&autostart=1&consent=1`);
      await page.waitForSelector('body[data-state="joined"]', { timeout: 30_000 });
      const first = await page.evaluate(() => document.body.dataset['producer']!);
      await until(() => sub.got.some((e) => e.stream === first && e.type === 'emotion'), 60_000, 'emotion events before the crash');

      const before = await health(s.url);
      assert.ok(before.workerPids.length >= 1);
      for (const pid of before.workerPids) process.kill(pid, 'SIGKILL');
      const killedAt = Date.now();

      // nothing touches the page from here on: it is told the room died and rejoins on a new worker
      let second = '';
      await until(
        () => {
          const e = sub.got.find((x) => x.type === 'emotion' && x.stream !== first);
          if (e) second = e.stream;
          return e !== undefined;
        },
        20_000,
        'emotion events after the worker was killed',
      );
      const resumedMs = Date.now() - killedAt;
      assert.ok(resumedMs <= 10_000, `events resumed ${resumedMs} ms after the kill (limit 10 s)`);
      assert.equal(await page.evaluate(() => document.body.dataset['producer']), second, 'the page publishes the new stream');
      assert.equal(await page.evaluate(() => document.body.dataset['state']), 'joined');
      const now = await health(s.url);
      assert.ok(now.workerDeaths >= before.workerPids.length, 'the deaths are counted');
      assert.equal(now.roomsRebuilt, 1, 'the room was rebuilt once');
      assert.ok(
        now.workerPids.every((p) => !before.workerPids.includes(p)),
        'the dead workers were replaced',
      );
      // the old stream ended; the subscriber saw it end before the new one started
      assert.ok(sub.got.some((e) => e.type === 'stream_end' && e.stream === first));
      process.stdout.write(`# events resumed ${resumedMs} ms after SIGKILL of the mediasoup worker\n`);

      const stored = [...fsw.files].map((f) => [f, mediaKind(f)] as const).filter(([, k]) => k !== null);
      assert.deepEqual(stored, [], 'no image or video file was written during the call');
      assert.ok(fsw.files.size < 50, `only a few files were written at all: ${[...fsw.files].slice(0, 10).join(', ')}`);
    } catch (e) {
      const state = await page.evaluate(() => `${document.body.dataset['state']}: ${document.querySelector('#status')?.textContent}`);
      process.stderr.write(`page ${state}\nbrowser console:\n${logs.slice(-20).join('\n')}\n`);
      throw e;
    } finally {
      fsw.close();
      sub.ws.close();
    }
  });
});
