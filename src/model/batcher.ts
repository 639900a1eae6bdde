import type { Embeddings } from './arpgnet.js';

interface Waiting {
  faces: Float32Array;
  n: number;
  resolve: (e: Embeddings) => void;
  reject: (e: Error) => void;
}

export interface BatcherStats {
  runs: number;
  faces: number;
}

/**
 * Encoder calls from several streams that arrive within `waitMs` of each other go
 * through one onnxruntime run. For the edge encoder `bench:serve` measured no fewer CPU
 * seconds per frame with it (setups `batch` and `new`), so it is off by default
 * (analysis.batchWaitMs 0); an encoder that pays more per run may gain. A call waits at
 * most `waitMs`; none once every stream using the batcher is waiting (one stream alone
 * never waits) or `maxFaces` are.
 */
export class EncoderBatcher {
  private queue: Waiting[] = [];
  private queued = 0;
  private timer: NodeJS.Timeout | null = null;
  readonly stats: BatcherStats = { runs: 0, faces: 0 };
  /** Streams that may call: each has at most one call waiting (its stages run in order). */
  private streams = 0;

  constructor(
    private readonly run: (faces: Float32Array, n: number) => Promise<Embeddings>,
    private readonly faceSize: number,
    private readonly o: { waitMs: number; maxFaces: number },
  ) {}

  join(): void {
    this.streams++;
  }

  leave(): void {
    this.streams--;
    if (this.queue.length && this.queue.length >= this.streams) this.flush();
  }

  encode(faces: Float32Array, n: number): Promise<Embeddings> {
    if (n > this.o.maxFaces) return this.run(faces, n);
    return new Promise<Embeddings>((resolve, reject) => {
      // the caller may reuse its buffer once this returns: keep a copy until the run
      if (this.queued + n > this.o.maxFaces) this.flush();
      this.queue.push({ faces: faces.slice(0, n * this.faceSize), n, resolve, reject });
      this.queued += n;
      if (this.queued >= this.o.maxFaces || this.queue.length >= this.streams) this.flush();
      else this.timer ??= setTimeout(() => this.flush(), this.o.waitMs);
    });
  }

  private flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const items = this.queue;
    const total = this.queued;
    this.queue = [];
    this.queued = 0;
    if (!items.length) return;
    // a fresh buffer per run (9 kB a face): a run may still read the last one
    const batch = new Float32Array(total * this.faceSize);
    let off = 0;
    for (const w of items) {
      batch.set(w.faces, off * this.faceSize);
      off += w.n;
    }
    this.stats.runs++;
    this.stats.faces += total;
    this.run(batch, total).then(
      (e) => {
        const app = e.app.length / total;
        const rel = e.rel.length / total;
        let k = 0;
        for (const w of items) {
          w.resolve({ app: e.app.subarray(k * app, (k + w.n) * app), rel: e.rel.subarray(k * rel, (k + w.n) * rel) });
          k += w.n;
        }
      },
      (err: Error) => items.forEach((w) => w.reject(err)),
    );
  }
}
