import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import { rolesOf, serve } from '../roles/serve.js';

/** Runs until SIGINT/SIGTERM, then closes workers, decoders and sockets before exiting. */
export async function serveCommand(cfg: Config, log: Logger): Promise<number> {
  const roles = rolesOf(cfg);
  // roles in separate processes meet on NATS; all of them in one process need no network bus
  if (!cfg.cluster.nats && roles.length < 3) throw new Error(`--role ${roles.join(',')} needs --nats (the roles meet on NATS)`);
  const s = await serve(cfg, log);
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
