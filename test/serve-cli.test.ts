import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { describe, it } from 'node:test';
import { CLI, ROOT } from './helpers.js';

const children = (pid: number): number[] => {
  try {
    return execFileSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' })
      .trim()
      .split('\n')
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
};

describe('arpgnet-edge serve (the main job, as a process)', () => {
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    it(`starts, serves /healthz and the pages, and shuts down cleanly on ${signal}`, async () => {
      const p = spawn(process.execPath, [CLI, 'serve', '--port', '0', '--providers', 'cpu'], {
        cwd: ROOT,
        env: { ...process.env, LOG_LEVEL: 'info' },
      });
      let stderr = '';
      p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const exited = new Promise<number | null>((resolve) => p.on('close', (code) => resolve(code)));
      try {
        const url = await new Promise<string>((resolve, reject) => {
          const t = setTimeout(() => reject(new Error(`no 'serving' line:\n${stderr}`)), 60_000);
          p.stderr.on('data', () => {
            const m = /"url":"(http:\/\/[^"]+)"/.exec(stderr);
            if (m) {
              clearTimeout(t);
              resolve(m[1]!);
            }
          });
        });
        const health = (await (await fetch(`${url}/healthz`)).json()) as { ok: boolean; sfu: { workers: number } };
        assert.equal(health.ok, true);
        assert.ok(health.sfu.workers >= 1);
        const page = await fetch(`${url}/?room=x`);
        assert.equal(page.status, 200);
        assert.match(await page.text(), /overlay\.js/);
        assert.equal((await fetch(`${url}/kiosk`)).status, 200);
        assert.equal((await fetch(`${url}/../package.json`)).status, 404);
        const workers = children(p.pid!);
        assert.ok(workers.length >= 1, 'mediasoup workers run as child processes');
        p.kill(signal);
        assert.equal(await exited, 0, stderr);
        assert.match(stderr, /"msg":"stopped"/);
        for (const w of workers) assert.throws(() => process.kill(w, 0), 'the worker process is gone');
      } finally {
        p.kill('SIGKILL');
      }
    });
  }
});
