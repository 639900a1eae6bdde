// Bundles the browser pages (web/*/main.ts) with esbuild into dist/web/, beside their HTML and CSS.
/* global process */
import { build } from 'esbuild';
import { copyFileSync, mkdirSync, readdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';

const out = 'dist/web';
mkdirSync(out, { recursive: true });
const pages = readdirSync('web').filter((d) => existsSync(join('web', d, 'main.ts')));
await build({
  entryPoints: Object.fromEntries(pages.map((p) => [p, join('web', p, 'main.ts')])),
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: 'chrome110',
  minify: true,
  sourcemap: true,
  outdir: out,
  logLevel: 'warning',
});
for (const p of pages) copyFileSync(join('web', p, 'index.html'), join(out, `${p}.html`));
copyFileSync('web/common/common.css', join(out, 'common.css'));
for (const p of pages) if (existsSync(join('web', p, `${p}.css`))) copyFileSync(join('web', p, `${p}.css`), join(out, `${p}.css`));
process.stderr.write(`web: ${pages.join(', ')} -> ${out}\n`);
