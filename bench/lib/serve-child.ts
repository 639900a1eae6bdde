/**
 * `serve` as a process of its own for load tests: the config comes as JSON in
 * ARPGNET_TEST_CONFIG (merged over the defaults), the URL goes out as one JSON line on
 * stdout, SIGTERM closes it. Measuring a server in its own process keeps the load
 * generator's memory and event loop out of its numbers.
 */
import { defaults, type Config } from '../../src/config.js';
import { createLogger } from '../../src/log.js';
import { serve } from '../../src/roles/serve.js';

type Over = { [K in keyof Config]?: Partial<Config[K]> };
const over = JSON.parse(process.env['ARPGNET_TEST_CONFIG'] ?? '{}') as Over;
const base = defaults();
const cfg = Object.fromEntries(
  Object.entries(base).map(([k, v]) => [k, { ...(v as object), ...((over as Record<string, object | undefined>)[k] ?? {}) }]),
) as unknown as Config;
const s = await serve(cfg, createLogger(process.env['LOG_LEVEL'] ?? 'warn'));
process.stdout.write(`${JSON.stringify({ url: s.url, pid: process.pid })}\n`);
const stop = (): void => void s.close().then(() => process.exit(0));
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
