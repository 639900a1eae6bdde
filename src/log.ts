import { pino, type Logger } from 'pino';

export type { Logger };

/** Pretty lines on a terminal, JSON lines otherwise; always on stderr so stdout stays for events. */
export function createLogger(level = process.env['LOG_LEVEL'] ?? 'info'): Logger {
  if (process.stderr.isTTY) {
    return pino({
      level,
      transport: { target: 'pino-pretty', options: { destination: 2, colorize: true, translateTime: 'HH:MM:ss.l' } },
    });
  }
  return pino({ level }, pino.destination(2));
}

/** A logger that drops everything: for library use and tests that do not care. */
export const silentLogger: Logger = pino({ level: 'silent' });
