import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { defaults, type Config } from '../src/config.js';
import { ROOT, sharedDir } from '../src/paths.js';
import type { PipelineEvent } from '../src/publish/events.js';

export { ROOT };
export const SHARED = sharedDir();
import { VIDEOS } from '../bench/lib/clips.js';
export { cachedClip, processes, VIDEOS } from '../bench/lib/clips.js';
export const CLI = resolve(ROOT, 'bin', 'arpgnet-edge.js');

export function testConfig(over: Partial<Config['analysis']> = {}): Config {
  const c = defaults();
  return { ...c, runtime: { ...c.runtime, providers: ['cpu'] }, analysis: { ...c.analysis, ...over } };
}

/** `serve` on any free port with one mediasoup worker, CPU only. */
export function serveTestConfig(over: Partial<Config['serve']> = {}): Config {
  const c = testConfig({ fps: 10 });
  return { ...c, serve: { ...c.serve, port: 0, ...over }, sfu: { ...c.sfu, workers: 1 } };
}

/** RGBA frames of a real clip, straight from ffmpeg (`args` between input and output: filters, frame counts). */
export function rgbaFrames(clip: string, args: string[]): Buffer {
  return execFileSync('ffmpeg', ['-v', 'error', '-i', join(VIDEOS, clip), ...args, '-pix_fmt', 'rgba', '-f', 'rawvideo', 'pipe:1'], {
    maxBuffer: 1 << 28,
  });
}

const ajv = new Ajv2020({ allErrors: true, strict: false });
(addFormats as unknown as (a: Ajv2020) => void)(ajv);
const schema = (v: 1 | 2 | 3): object => JSON.parse(readFileSync(join(ROOT, `src/publish/events.v${v}.schema.json`), 'utf8')) as object;
const validate3 = ajv.compile(schema(3));
const validate2 = ajv.compile(schema(2));
const validate1 = ajv.compile(schema(1));

/** Throws with ajv's reasons when an event breaks schema v3 (what the pipeline and /events produce). */
export function assertSchema(e: unknown): asserts e is PipelineEvent {
  if (!validate3(e)) throw new Error(`event breaks schema v3: ${ajv.errorsText(validate3.errors)}\n${JSON.stringify(e)}`);
}

/** The same for schema v2, served to subscribers that ask for it (?v=2). */
export function assertSchemaV2(e: unknown): void {
  if (!validate2(e)) throw new Error(`event breaks schema v2: ${ajv.errorsText(validate2.errors)}\n${JSON.stringify(e)}`);
}

/** The same for schema v1, served to subscribers that ask for it (?v=1). */
export function assertSchemaV1(e: unknown): void {
  if (!validate1(e)) throw new Error(`event breaks schema v1: ${ajv.errorsText(validate1.errors)}\n${JSON.stringify(e)}`);
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function runCli(args: string[], env: Record<string, string> = {}, timeoutMs = 240_000): Promise<CliResult> {
  return new Promise((resolvePromise) => {
    const p = spawn(process.execPath, [CLI, ...args], { cwd: ROOT, env: { ...process.env, LOG_LEVEL: 'info', ...env } });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.on('close', (code) => {
      clearTimeout(timer);
      resolvePromise({ code, stdout, stderr });
    });
  });
}

export const parseJsonl = (s: string): PipelineEvent[] =>
  s
    .split('\n')
    .filter((l) => l.trim().startsWith('{'))
    .map((l) => JSON.parse(l) as PipelineEvent);

export const haveShared = existsSync(join(SHARED, 'models', 'mediapipe', 'face_landmarker.task'));

/** A small, schema-valid event (a non-fatal error) numbered i, for hub and bus tests. */
export const testEvent = (room: string, i: number, stream = `s-${room}`): PipelineEvent => ({
  v: 3,
  type: 'error',
  stream,
  room,
  ts: i,
  wallTime: new Date().toISOString(),
  code: 'test',
  message: `event ${i}`,
  fatal: false,
});
