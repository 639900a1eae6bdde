import { createWriteStream, type WriteStream } from 'node:fs';
import type { PipelineEvent } from './events.js';

/** Events as JSON Lines to a file, or to stdout for '-'. */
export class JsonlSink {
  private readonly out: NodeJS.WritableStream;
  private readonly file: WriteStream | null;

  constructor(target: string) {
    this.file = target === '-' ? null : createWriteStream(target, { flags: 'w' });
    this.out = this.file ?? process.stdout;
  }

  write(e: PipelineEvent): void {
    this.out.write(`${JSON.stringify(e)}\n`);
  }

  async close(): Promise<void> {
    const f = this.file;
    if (f) await new Promise<void>((resolve, reject) => f.end((err?: Error | null) => (err ? reject(err) : resolve())));
  }
}
