import type { Config } from '../config.js';
import { Authenticator, GRANTS, type Grant } from '../host/auth.js';

export interface TokenFlags {
  room: string;
  identity: string;
  grant: string[];
  ttl: string;
}

/** '90s', '15m', '1h', '7d' or plain seconds. */
export function parseTtl(s: string): number {
  const m = /^(\d+)([smhd]?)$/.exec(s.trim());
  if (!m) throw new Error(`--ttl: '${s}' is not a duration (e.g. 90s, 15m, 1h, 7d)`);
  const n = Number(m[1]) * { '': 1, s: 1, m: 60, h: 3600, d: 86400 }[m[2] as '' | 's' | 'm' | 'h' | 'd'];
  if (n <= 0) throw new Error('--ttl must be positive');
  return n;
}

/** Prints a room token signed with the configured secret. */
export async function tokenCommand(cfg: Config, f: TokenFlags): Promise<number> {
  const grants = f.grant.flatMap((g) => g.split(',')).map((g) => g.trim());
  const bad = grants.filter((g) => !GRANTS.includes(g as Grant));
  if (bad.length || !grants.length) throw new Error(`--grant: ${bad.join(', ') || 'none given'} (grants: ${GRANTS.join(', ')})`);
  const auth = new Authenticator(cfg.auth, false);
  process.stdout.write(
    `${await auth.sign({ room: f.room, identity: f.identity, grants: grants as Grant[], ttlSeconds: parseTtl(f.ttl) })}\n`,
  );
  return 0;
}
