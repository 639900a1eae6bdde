/**
 * Where the server's memory grows: the churn soak (bench/lib/soak.ts) run once per
 * variant, each a few minutes, with every sample broken down by kind (glibc's main and
 * thread arenas, wasm reservations, other anonymous memory, V8's heaps on the main and
 * the worker threads). A variant that stays flat where the default grows names the
 * part that holds the memory. Prints JSON.
 *
 *   npm run bench:memory -- [--minutes 5] [--variants default,mediapipe,actions,workers-0,arenas-2] [--seed 1]
 */
import { arg, commit } from './lib/measure.js';
import { soak, type SoakOptions } from './lib/soak.js';

type Variant = Pick<SoakOptions, 'config' | 'env' | 'actions'> & { what: string };

const VARIANTS: Record<string, Variant> = {
  default: { what: 'the shipped defaults (YuNet, one face worker per core)' },
  mediapipe: { what: 'MediaPipe finds the faces', config: { analysis: { detector: 'mediapipe' } } },
  actions: { what: 'subscribers ask for facial actions (MediaPipe beside YuNet)', actions: true },
  'workers-0': { what: 'faces found on the main thread', config: { analysis: { landmarkWorkers: 0 } } },
  'workers-1': { what: 'one face worker', config: { analysis: { landmarkWorkers: 1 } } },
  'arenas-2': { what: 'glibc limited to two malloc arenas', env: { MALLOC_ARENA_MAX: '2' } },
  // a fixed threshold turns off glibc's dynamic one, which after the first free of a large
  // block serves blocks up to that size from the arenas instead of mmap
  'mmap-128k': { what: "glibc's mmap threshold fixed at 128 KiB", env: { MALLOC_MMAP_THRESHOLD_: '131072' } },
};

const minutes = Number(arg('--minutes', '5'));
const seed = Number(arg('--seed', '1'));
const names = arg('--variants', 'default,mediapipe,actions,workers-0,arenas-2').split(',');
const unknown = names.filter((n) => !VARIANTS[n]);
if (unknown.length) throw new Error(`unknown variant ${unknown.join(', ')}; known: ${Object.keys(VARIANTS).join(', ')}`);

const runs = [];
for (const name of names) {
  const v = VARIANTS[name]!;
  process.stderr.write(`${name}: ${v.what}\n`);
  const r = await soak({ minutes, participants: 3, seed, sampleSeconds: 15, ...v, log: (l) => process.stderr.write(`  ${l}\n`) });
  runs.push({
    variant: name,
    what: v.what,
    cycles: r.cycles,
    failedCycles: r.failedCycles,
    rssStartMB: r.start.rssMB,
    rssEndMB: r.end.rssMB,
    rssSlopeMBPerMin: r.rssSlopeMBPerMin,
    slopes: r.slopes,
    start: r.start.native,
    end: r.end.native,
    leaks: r.leaks,
  });
}
process.stdout.write(
  `${JSON.stringify({ command: `npm run bench:memory -- ${process.argv.slice(2).join(' ')}`.trim(), commit: commit(), seed, minutes, runs }, null, 2)}\n`,
);
