import { readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join } from 'node:path';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { requestUrl } from './request-url.js';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json',
  '.svg': 'image/svg+xml',
};

/**
 * The bundled pages, read once at start into memory: a fixed set of names, so no
 * request path ever reaches the file system. `/` is the overlay, `/kiosk` the kiosk.
 */
export function staticFiles(dir: string): (req: IncomingMessage, res: ServerResponse) => boolean {
  const files = new Map<string, { body: Buffer; type: string }>();
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => statSync(join(dir, n)).isFile());
  } catch {
    throw new Error(`no web bundle in ${dir}; run npm run build:web`);
  }
  for (const n of names) files.set(`/${n}`, { body: readFileSync(join(dir, n)), type: TYPES[extname(n)] ?? 'application/octet-stream' });
  const alias: Record<string, string> = { '/': '/overlay.html', '/kiosk': '/kiosk.html' };
  return (req, res) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') return false;
    const path = requestUrl(req)?.pathname;
    if (path === undefined) return false;
    const f = files.get(alias[path] ?? path);
    if (!f) return false;
    res.writeHead(200, { 'content-type': f.type, 'content-length': f.body.length, 'cache-control': 'no-cache' });
    res.end(req.method === 'HEAD' ? undefined : f.body);
    return true;
  };
}
