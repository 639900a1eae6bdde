/**
 * Real clips and processes for load generators: the benchmarks' own, also used by the
 * tests (benchmarks import nothing from test/).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, sharedDir } from '../../src/paths.js';

export const VIDEOS = join(sharedDir(), 'data', 'videos');

/**
 * A clip made once by ffmpeg (the arguments between input and output) and kept in
 * .cache/clips; written under a temporary name first so a killed run leaves no half file.
 */
export function cachedClip(name: string, ffmpegArgs: string[]): string {
  const dir = join(ROOT, '.cache', 'clips');
  const out = join(dir, name);
  if (existsSync(out)) return out;
  mkdirSync(dir, { recursive: true });
  execFileSync('ffmpeg', ['-loglevel', 'error', '-y', ...ffmpegArgs, `${out}.tmp`]);
  renameSync(`${out}.tmp`, out);
  return out;
}

/** Pids of processes whose command line contains `pattern` (decoders: 'arpgnet-rtp-'). */
export function processes(pattern: string): number[] {
  try {
    return execFileSync('pgrep', ['-f', pattern], { encoding: 'utf8' }).trim().split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}
