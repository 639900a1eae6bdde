import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

/**
 * Clean UDP relays (udp-relay.ts) in a process of their own: a benchmark's relays must not
 * load the process whose CPU it measures, nor its event loop. One child serves every relay.
 */
export class RelayHost {
  private readonly waiting: Array<(port: number) => void> = [];

  private constructor(private readonly child: ChildProcess) {
    createInterface({ input: child.stdout! }).on('line', (l) => this.waiting.shift()?.(Number(l)));
  }

  static start(): RelayHost {
    const script = fileURLToPath(new URL('./relay-child.ts', import.meta.url));
    return new RelayHost(spawn(process.execPath, ['--import', 'tsx', script], { stdio: ['pipe', 'pipe', 'inherit'] }));
  }

  /** A relay to `target`; resolves to the port senders send to. */
  open(target: { ip: string; port: number }): Promise<number> {
    return new Promise((resolve) => {
      this.waiting.push(resolve);
      this.child.stdin!.write(`${target.ip} ${target.port}\n`);
    });
  }

  close(): void {
    this.child.kill('SIGKILL');
  }
}
