/**
 * The fault run (bench/lib/faults.ts): churn with a mediasoup worker, a decoder and the
 * bus killed at random times; prints JSON. --check exits 1 when a fault was not
 * recovered from, an event was lost, or something was left open.
 *
 *   npm run bench:faults -- [--minutes 60] [--participants 3] [--seed 1] [--gap 60,150] [--check] [--server-log FILE]
 */
import { appendFileSync } from 'node:fs';
import { arg, commit } from './lib/measure.js';
import { faultRun } from './lib/faults.js';

const [lo, hi] = arg('--gap', '60,150').split(',').map(Number);
const r = await faultRun({
  minutes: Number(arg('--minutes', '60')),
  participants: Number(arg('--participants', '3')),
  seed: Number(arg('--seed', '1')),
  gapSeconds: [lo ?? 60, hi ?? lo ?? 150],
  log: (l) => process.stderr.write(`${l}\n`),
  serverLog: process.argv.includes('--server-log') ? (l) => appendFileSync(arg('--server-log', ''), l) : undefined,
});
process.stdout.write(
  `${JSON.stringify({ command: `npm run bench:faults -- ${process.argv.slice(2).join(' ')}`.trim(), commit: commit(), ...r }, null, 2)}\n`,
);
const unrecovered = r.faults.filter((f) => f.resumedWithinMs === null);
if (process.argv.includes('--check') && (unrecovered.length || r.eventsLost || r.logFailed || r.leaks.length)) {
  process.stderr.write(
    `failed: ${unrecovered.length} faults not recovered, ${r.eventsLost} events lost, ${r.logFailed} not written, leaks: ${r.leaks.join('; ')}\n`,
  );
  process.exitCode = 1;
}
