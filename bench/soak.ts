/**
 * Churn soak against a running server (its own process); prints JSON.
 *
 *   npm run bench:soak -- [--minutes 30] [--participants 3] [--seed 1] [--sample 10] [--check]
 *                          [--config '{"analysis":{"detector":"mediapipe"}}'] [--actions]
 *
 * RSS slope, event-loop lag p99, open handles, child processes, mediasoup objects and
 * UDP ports at start and end (see bench/lib/soak.ts). --check exits 1 when anything
 * did not come back to its start value once every participant had left.
 */
import { arg, commit } from './lib/measure.js';
import { soak } from './lib/soak.js';

const minutes = Number(arg('--minutes', '30'));
const participants = Number(arg('--participants', '3'));
const seed = Number(arg('--seed', '1'));
const r = await soak({
  minutes,
  participants,
  seed,
  sampleSeconds: Number(arg('--sample', '10')),
  config: JSON.parse(arg('--config', '{}')) as Record<string, Record<string, unknown>>,
  actions: process.argv.includes('--actions'),
  log: (l) => process.stderr.write(`${l}\n`),
});
process.stdout.write(
  `${JSON.stringify({ command: `npm run bench:soak -- ${process.argv.slice(2).join(' ')}`.trim(), commit: commit(), ...r }, null, 2)}\n`,
);
if (process.argv.includes('--check') && r.leaks.length) {
  process.stderr.write(`leaks: ${r.leaks.join('; ')}\n`);
  process.exitCode = 1;
}
