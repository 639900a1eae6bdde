/**
 * How often a process ends badly: `run` on a short clip many times over, each in its own
 * process, counting exits that were not clean (an abort is a signal); prints JSON.
 *
 *   npm run bench:shutdown -- [--runs 100] [--clip d12.mp4] [--load 1] [--against DIR]
 *
 * --load N keeps N busy processes beside the runs: the faults this looks for are races
 * between threads, and a loaded machine widens them. --against DIR alternates the runs
 * with another checkout's build (its dist/, same node_modules), so a fix and the code
 * before it are measured in one run under the same load.
 */
import { spawn } from 'node:child_process';
import { join, resolve } from 'node:path';
import { ROOT, sharedDir } from '../src/paths.js';
import { arg, commit } from './lib/measure.js';

const runs = Number(arg('--runs', '100'));
const clip = join(sharedDir(), 'data', 'videos', arg('--clip', 'd12.mp4'));
const load = Number(arg('--load', '1'));
const against = process.argv.includes('--against') ? resolve(arg('--against', '')) : null;

interface Tally {
  runs: number;
  clean: number;
  /** Ended by a signal (SIGABRT: a native abort). */
  signals: Record<string, number>;
  /** Ended with a non-zero code. */
  codes: Record<string, number>;
  /** The last lines of stderr of the first few bad ends. */
  examples: string[];
}

const tally = (): Tally => ({ runs: 0, clean: 0, signals: {}, codes: {}, examples: [] });

function once(root: string, t: Tally): Promise<void> {
  return new Promise((done) => {
    const p = spawn(process.execPath, [join(root, 'bin', 'arpgnet-edge.js'), 'run', '--input', clip, '--events', '-'], {
      cwd: root,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let err = '';
    p.stderr.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-2000)));
    p.on('exit', (code, signal) => {
      t.runs++;
      if (code === 0) t.clean++;
      else if (signal) t.signals[signal] = (t.signals[signal] ?? 0) + 1;
      else t.codes[String(code)] = (t.codes[String(code)] ?? 0) + 1;
      if (code !== 0 && t.examples.length < 3) t.examples.push(err.split('\n').slice(-4).join('\n'));
      done();
    });
  });
}

const hogs = Array.from({ length: load }, () => spawn(process.execPath, ['-e', 'for (;;);'], { stdio: 'ignore' }));
const current = tally();
const other = tally();
const t0 = Date.now();
const measured = commit();
try {
  for (let i = 0; i < runs; i++) {
    await once(ROOT, current);
    if (against) await once(against, other);
    if ((i + 1) % 10 === 0) process.stderr.write(`${i + 1}/${runs}\n`);
  }
} finally {
  for (const h of hogs) h.kill();
}
process.stdout.write(
  `${JSON.stringify(
    {
      command: `npm run bench:shutdown -- ${process.argv.slice(2).join(' ')}`.trim(),
      commit: measured,
      seed: null,
      clip: arg('--clip', 'd12.mp4'),
      load,
      seconds: Math.round((Date.now() - t0) / 1000),
      current,
      ...(against ? { against: { commit: commit(against), ...other } } : {}),
    },
    null,
    2,
  )}\n`,
);
