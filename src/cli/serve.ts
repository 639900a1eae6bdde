import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import { rolesOf, startCluster } from '../serve/cluster.js';
import { startServer } from '../serve/server.js';

/** Runs until SIGINT/SIGTERM, then closes workers, decoders and sockets before exiting. */
export async function serveCommand(cfg: Config, log: Logger): Promise<number> {
  const roles = rolesOf(cfg);
  if (!cfg.cluster.nats && roles.length < 3) throw new Error(`--role ${roles.join(',')} needs --nats (the roles meet on NATS)`);
  // `all` without NATS is the single-box server; an explicit role list runs the scale-out roles (on NATS, or in-process)
  const s = cfg.cluster.nats || !cfg.cluster.roles.includes('all') ? await startCluster(cfg, log) : await startServer(cfg, log);
  await new Promise<void>((resolve) => {
    const stop = (sig: string): void => {
      log.info({ signal: sig }, 'signal received');
      resolve();
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });
  const forced = setTimeout(() => {
    log.error('shutdown took over 10 s; exiting');
    process.exit(1);
  }, 10_000);
  forced.unref();
  await s.close();
  return 0;
}
