/**
 * One benchmark, two checkouts, in one run: the same npm script in another folder (an
 * older commit) and in this one, taking turns round by round, so both meet the same
 * machine load. Prints JSON: every run of each, and per stream count the medians and
 * the new/old ratio of each numeric field.
 *
 *   npm run bench:versus -- --old ../other-checkout [--rounds 2] [--out file.json] -- bench:serve --setups new --streams 5,10
 *
 * The script must print one JSON object with `runs` (rows with `streams`), as
 * bench:serve and bench:cluster do.
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { ROOT } from '../src/paths.js';
import { arg, commit, pct } from './lib/measure.js';

type Row = Record<string, number | boolean | string>;

const sep = process.argv.indexOf('--');
if (sep < 0) throw new Error('usage: bench:versus -- --old DIR [--rounds N] -- <npm script> [its flags]');
const [script, ...flags] = process.argv.slice(sep + 1);
const oldDir = resolve(arg('--old', ''));
const rounds = Number(arg('--rounds', '2'));
const out = arg('--out', '');
if (!script || !arg('--old', '')) throw new Error('--old DIR and a script after -- are required');

function once(dir: string): Row[] {
  const text = execFileSync('npm', ['run', '--silent', script!, '--', ...flags], {
    cwd: dir,
    stdio: ['ignore', 'pipe', 'inherit'],
    maxBuffer: 1 << 26,
  }).toString();
  return (JSON.parse(text.slice(text.indexOf('{'))) as { runs: Row[] }).runs;
}

const runs: { old: Row[]; new: Row[] } = { old: [], new: [] };
for (let r = 0; r < rounds; r++) {
  // alternate which goes first, so neither always follows the other's warm caches
  const order = r % 2 === 0 ? (['old', 'new'] as const) : (['new', 'old'] as const);
  for (const side of order) {
    const rows = once(side === 'old' ? oldDir : ROOT).map((x) => ({ ...x, round: r }));
    runs[side].push(...rows);
    process.stderr.write(`${JSON.stringify({ side, round: r, rows })}\n`);
  }
}

const counts = [...new Set(runs.new.map((x) => Number(x['streams'])))].sort((a, b) => a - b);
const median = (rows: Row[], k: string): number =>
  pct(
    rows.map((x) => Number(x[k])),
    50,
  );
const byCount = counts.map((n) => {
  const o = runs.old.filter((x) => Number(x['streams']) === n);
  const w = runs.new.filter((x) => Number(x['streams']) === n);
  const fields = Object.keys(w[0] ?? {}).filter((k) => typeof w[0]![k] === 'number' && k !== 'streams' && k !== 'round');
  const med = (rows: Row[]): Record<string, number> => Object.fromEntries(fields.map((k) => [k, median(rows, k)]));
  const mo = med(o);
  const mn = med(w);
  const ratio = Object.fromEntries(fields.filter((k) => mo[k]).map((k) => [k, +(mn[k]! / mo[k]!).toFixed(3)]));
  return {
    streams: n,
    held: {
      old: o.filter((x) => x['ok'] === true).length + ' of ' + o.length,
      new: w.filter((x) => x['ok'] === true).length + ' of ' + w.length,
    },
    old: mo,
    new: mn,
    newOverOld: ratio,
  };
});
const result = {
  command: `npm run bench:versus -- ${process.argv.slice(2).join(' ')}`,
  commit: { old: commit(oldDir), new: commit() },
  seed: null,
  rounds,
  byStreams: byCount,
  runs,
};
const json = JSON.stringify(result, null, 2) + '\n';
if (out) writeFileSync(out, json);
process.stdout.write(json);
