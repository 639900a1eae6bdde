import { cpus } from 'node:os';
import * as mediasoup from 'mediasoup';
import type { types } from 'mediasoup';
import type { Logger } from '../log.js';

/** mediasoup objects alive in this process, kept by mediasoup's observer events: what a leak would grow. */
export class MediaCounts {
  routers = 0;
  transports = 0;
  producers = 0;
  consumers = 0;

  watch(w: types.Worker): void {
    w.observer.on('newrouter', (r) => {
      this.count('routers', r.observer);
      r.observer.on('newtransport', (t) => {
        this.count('transports', t.observer);
        t.observer.on('newproducer', (p) => this.count('producers', p.observer));
        t.observer.on('newconsumer', (c) => this.count('consumers', c.observer));
      });
    });
  }

  /** One more of `kind` until its observer says it closed. */
  private count(kind: 'routers' | 'transports' | 'producers' | 'consumers', observer: { once(e: 'close', f: () => void): unknown }): void {
    this[kind]++;
    observer.once('close', () => void this[kind]--);
  }

  snapshot(): { routers: number; transports: number; producers: number; consumers: number } {
    return { routers: this.routers, transports: this.transports, producers: this.producers, consumers: this.consumers };
  }
}

export interface WorkerSettings {
  /** 0 = one per core. */
  count: number;
  rtcMinPort: number;
  rtcMaxPort: number;
}

/**
 * mediasoup Workers (one C++ process each), handed out round robin to new rooms.
 * A worker that dies takes its routers with it: those rooms close (their peers are
 * told to rejoin), the worker is replaced, and the other rooms never notice.
 */
export class WorkerPool {
  private readonly workers: types.Worker[] = [];
  private next = 0;
  private readonly replacing = new Set<Promise<void>>();
  readonly media = new MediaCounts();
  private closing = false;
  deaths = 0;

  private constructor(
    private readonly s: WorkerSettings,
    private readonly log: Logger,
  ) {}

  static async create(s: WorkerSettings, log: Logger): Promise<WorkerPool> {
    const pool = new WorkerPool(s, log);
    const n = s.count > 0 ? s.count : cpus().length;
    for (let i = 0; i < n; i++) pool.workers.push(await pool.spawn());
    log.info({ workers: n, mediasoup: mediasoup.version, rtcPorts: `${s.rtcMinPort}-${s.rtcMaxPort}` }, 'mediasoup workers ready');
    return pool;
  }

  private async spawn(): Promise<types.Worker> {
    let worker: types.Worker;
    try {
      worker = await mediasoup.createWorker({ logLevel: 'warn', rtcMinPort: this.s.rtcMinPort, rtcMaxPort: this.s.rtcMaxPort });
    } catch (e) {
      throw new Error(
        `cannot start the mediasoup worker (${(e as Error).message}); run scripts/build-mediasoup-worker.sh or set MEDIASOUP_WORKER_BIN`,
        { cause: e },
      );
    }
    this.media.watch(worker);
    worker.on('died', (err) => {
      this.deaths++;
      const i = this.workers.indexOf(worker);
      this.log.error({ pid: worker.pid, err }, 'mediasoup worker died; its rooms are rebuilt on a new one');
      if (this.closing || i < 0) return;
      const replacing = this.spawn().then(
        (w) => {
          this.workers[i] = w;
          this.log.info({ pid: w.pid, replaced: worker.pid }, 'mediasoup worker replaced');
        },
        (e: unknown) => this.log.error({ err: e }, 'cannot replace the mediasoup worker'),
      );
      this.replacing.add(replacing);
      void replacing.finally(() => this.replacing.delete(replacing));
    });
    return worker;
  }

  /** The next live worker; while every worker is dead, waits for a replacement. */
  async pick(): Promise<types.Worker> {
    for (let tries = 0; tries < 2; tries++) {
      for (let k = 0; k < this.workers.length; k++) {
        const w = this.workers[this.next++ % this.workers.length];
        if (w && !w.closed) return w;
      }
      await Promise.all(this.replacing);
    }
    throw new Error('no mediasoup worker available');
  }

  /** Process ids of the live workers (for operators and tests). */
  pids(): number[] {
    return this.workers.filter((w) => !w.closed).map((w) => w.pid);
  }

  get size(): number {
    return this.workers.length;
  }

  close(): void {
    this.closing = true;
    for (const w of this.workers) w.close();
  }
}
