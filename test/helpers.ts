import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { defaults, type Config } from '../src/config.js';
import { ROOT, sharedDir } from '../src/paths.js';
import type { PipelineEvent } from '../src/publish/events.js';

export { ROOT };
export const SHARED = sharedDir();
export const VIDEOS = join(SHARED, 'data', 'videos');
export const CLI = resolve(ROOT, 'bin', 'arpgnet-edge.js');

export function testConfig(over: Partial<Config['analysis']> = {}): Config {
  const c = defaults();
  return { ...c, runtime: { ...c.runtime, providers: ['cpu'] }, analysis: { ...c.analysis, ...over } };
}

const ajv = new Ajv2020({ allErrors: true, strict: false });
(addFormats as unknown as (a: Ajv2020) => void)(ajv);
const schema = JSON.parse(readFileSync(join(ROOT, 'src/publish/events.v1.schema.json'), 'utf8')) as object;
const validate = ajv.compile(schema);

/** Throws with ajv's reasons when an event breaks schema v1. */
export function assertSchema(e: unknown): asserts e is PipelineEvent {
  if (!validate(e)) throw new Error(`event breaks schema v1: ${ajv.errorsText(validate.errors)}\n${JSON.stringify(e)}`);
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
