import type { IncomingMessage } from 'node:http';

/**
 * The request's URL, or null when it cannot be parsed. `new URL` throws on request
 * targets such as `//[`, and a throw in a request or upgrade listener would take the
 * whole server down (found by fuzzing): every listener reads its URL through here.
 */
export function requestUrl(req: IncomingMessage): URL | null {
  try {
    return new URL(req.url ?? '/', 'http://x');
  } catch {
    return null;
  }
}
