import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { it } from 'node:test';
import { ROOT } from './helpers.js';

// The PyTorch side's own checks (shapes of both presets, graphs, dataset errors,
// preset mismatches) run with Debian's Python, where torch lives.
it('training package: python unittest suite passes', () => {
  const r = spawnSync('/usr/bin/python3', ['-m', 'unittest', 'discover', '-s', 'tests', '-t', '.'], {
    cwd: join(ROOT, 'training'),
    encoding: 'utf8',
  });
  const summary = /Ran (\d+) tests?/.exec(r.stderr);
  assert.equal(r.status, 0, r.stderr.slice(-3000));
  assert.ok(summary && Number(summary[1]) >= 10, `ran too few tests: ${r.stderr.slice(-500)}`);
});
