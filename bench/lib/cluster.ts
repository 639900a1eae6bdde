/**
 * A cluster on one machine for tests and benchmarks: a real nats-server with JetStream
 * (Debian's package) on a free loopback port and a temporary store, and `serve` roles
 * as separate processes of the real CLI.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { ROOT } from '../../src/paths.js';

export const NATS_SERVER = process.env['NATS_SERVER'] ?? 'nats-server';

const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });

export interface Nats {
  url: string;
  proc: ChildProcess;
  /** kill -9, as a crash would. */
  kill(): Promise<void>;
  /** Up again on the same port and store. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

async function natsProcess(dir: string, port: number): Promise<ChildProcess> {
  const proc = spawn(NATS_SERVER, ['-js', '-sd', dir, '-a', '127.0.0.1', '-p', String(port)], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  proc.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  const t0 = Date.now();
  while (!/Server is ready/.test(log)) {
    if (proc.exitCode !== null || Date.now() - t0 > 10_000) throw new Error(`nats-server did not start: ${log.slice(-500)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return proc;
}

export async function startNats(): Promise<Nats> {
  const dir = mkdtempSync(join(tmpdir(), 'arpgnet-nats-'));
  const port = await freePort();
  const ended = (p: ChildProcess): Promise<unknown> =>
    p.exitCode !== null || p.signalCode !== null ? Promise.resolve() : new Promise((r) => p.once('exit', r));
  const n: Nats = {
    url: `nats://127.0.0.1:${port}`,
    proc: await natsProcess(dir, port),
    kill: async () => {
      n.proc.kill('SIGKILL');
      await ended(n.proc);
    },
    restart: async () => {
      n.proc = await natsProcess(dir, port);
    },
    stop: async () => {
      n.proc.kill('SIGTERM');
      await ended(n.proc);
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return n;
}

export interface RoleProcess {
  url: string;
  pid: number;
  proc: ChildProcess;
  /** The process's log lines so far (pino JSON). */
  log: string[];
  stop(): Promise<void>;
}

/** One config file for every role of a test cluster: one mediasoup worker, CPU only, one landmark thread. */
export function clusterConfig(over: Record<string, unknown> = {}): string {
  const dir = mkdtempSync(join(tmpdir(), 'arpgnet-cluster-'));
  const file = join(dir, 'config.json');
  writeFileSync(
    file,
    JSON.stringify({
      sfu: { workers: 1 },
      runtime: { providers: ['cpu'] },
      analysis: { landmarkWorkers: 1, fps: 10 },
      ...over,
    }),
  );
  return file;
}

/** `arpgnet-edge serve --role <roles> --nats <url>` as its own process; resolves once it serves. */
export async function startRole(roles: string, nats: string, config: string, extra: string[] = []): Promise<RoleProcess> {
  const proc = spawn(
    process.execPath,
    ['bin/arpgnet-edge.js', 'serve', '--role', roles, '--nats', nats, '--port', '0', '--config', config, ...extra],
    {
      cwd: ROOT,
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, LOG_LEVEL: 'info' },
    },
  );
  const log: string[] = [];
  const url = await new Promise<string>((resolve, reject) => {
    const rl = createInterface({ input: proc.stderr! });
    rl.on('line', (l) => {
      log.push(l);
      if (log.length > 2000) log.shift();
      const m = /"url":"(http:[^"]+)".*"msg":"serving"/.exec(l);
      if (m) resolve(m[1]!);
    });
    proc.once('exit', (code) => reject(new Error(`serve --role ${roles} exited (${code}): ${log.slice(-5).join('\n')}`)));
  });
  return {
    url,
    pid: proc.pid!,
    proc,
    log,
    stop: async () => {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill('SIGTERM');
      await new Promise((r) => proc.once('exit', r));
    },
  };
}
