import { Worker } from 'node:worker_threads';
import type { RgbaFrame } from '../../ingest/frame.js';
import type { Logger } from '../../log.js';
import type { FaceFinderOptions } from './stream-faces.js';
import type { Embeddings, ModelFiles } from '../../model/arpgnet.js';
import type { SessionOptions } from '../../model/session.js';
import type { DetectedFace, FaceFinder, Inference, SharedView } from './face.js';
import type { ThreadMemory, WorkerReply, WorkerRequest } from './face-worker.js';

const FROM_SOURCE = import.meta.url.endsWith('.ts');
const WORKER_URL = new URL(FROM_SOURCE ? './face-worker.ts' : './face-worker.js', import.meta.url);

/** In a source checkout (run through tsx) the worker registers tsx itself: Node 20 does not hand loaders to workers. */
function startWorker(): Worker {
  if (!FROM_SOURCE) return new Worker(WORKER_URL);
  const boot = `import('tsx/esm/api').then((t) => { t.register(); return import(${JSON.stringify(WORKER_URL.href)}); });`;
  return new Worker(boot, { eval: true });
}

/** What the workers load to run the encoder and head (FacePool.loadModel). */
export interface ModelSpec {
  files: ModelFiles;
  opts: SessionOptions;
}

type Pending = { resolve: (r: WorkerReply) => void; reject: (e: Error) => void };

class Slot {
  worker: Worker;
  readonly pending = new Map<number, Pending>();
  streams = 0;
  deaths = 0;

  constructor(
    readonly log: Logger,
    private readonly onDeath: () => void,
  ) {
    this.worker = this.spawn();
  }

  private spawn(): Worker {
    const w = startWorker();
    w.on('message', (r: WorkerReply) => {
      const p = this.pending.get(r.req);
      this.pending.delete(r.req);
      p?.resolve(r);
    });
    w.on('error', (e) => this.log.error({ err: e }, 'face worker failed'));
    w.on('exit', (code) => {
      if (this.worker !== w || this.closing) return;
      // its streams lose their face finders (re-opened on their next frame); the others go on
      this.deaths++;
      this.onDeath();
      this.log.error({ code }, 'face worker died; starting another');
      for (const p of this.pending.values()) p.reject(new Error('the face worker died'));
      this.pending.clear();
      this.generation++;
      this.worker = this.spawn();
    });
    // referenced for its whole life: a stream awaiting it must keep the process alive;
    // whoever creates the pool closes it (EmotionPipeline.close), also on failure
    return w;
  }

  send(m: WorkerRequest, pending: Pending): void {
    this.pending.set(m.req, pending);
    this.worker.postMessage(m);
  }

  closing = false;
  generation = 0;
  private model: { generation: number; loaded: Promise<void> } | null = null;

  /** The model loaded in this worker (again in a worker that replaced a dead one). */
  modelReady(spec: ModelSpec): Promise<void> {
    if (this.model?.generation === this.generation) return this.model.loaded;
    const loaded = new Promise<WorkerReply>((resolve, reject) =>
      this.send({ type: 'model', req: nextReq++, files: spec.files, opts: spec.opts }, { resolve, reject }),
    ).then((r) => {
      if (!r.ok) throw new Error(`the model did not load in a face worker: ${r.error}`);
    });
    this.model = { generation: this.generation, loaded };
    // a failed load is tried again by the next call
    loaded.catch(() => (this.model = null));
    return loaded;
  }

  /**
   * Ends the worker the way that cannot abort the process: it releases its sessions and
   * ends by itself. `terminate()` while onnxruntime is releasing a session in that thread
   * aborted the whole process now and then (a C++ exception out of the binding); it is
   * only the fallback for a worker that does not end in time.
   */
  async shutdown(timeoutMs: number): Promise<boolean> {
    this.closing = true;
    const w = this.worker;
    const exited = new Promise<'ended'>((resolve) => w.once('exit', () => resolve('ended')));
    // the reply is not awaited: a worker that replied closes its port and ends; one that died has ended
    this.send({ type: 'shutdown', req: nextReq++ }, { resolve: () => undefined, reject: () => undefined });
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), timeoutMs)));
    const ended = await Promise.race([exited, late]);
    clearTimeout(timer);
    if (ended === 'late') {
      this.log.warn({ timeoutMs }, 'face worker did not end in time; terminating it');
      await w.terminate();
    }
    return ended === 'ended';
  }
}

/** How long a worker gets to release its sessions and end before it is terminated. */
const SHUTDOWN_MS = 5000;

let nextReq = 1;
let nextId = 1;

/**
 * Face finding on worker threads: each stream's face finder lives in one worker (its VIDEO
 * tracking state is per stream), streams are spread over the workers by count, and a
 * worker that dies is replaced while its streams re-open their face finders.
 */
export class FacePool {
  private readonly slots: Slot[];
  deaths = 0;
  /** Workers that did not end by themselves on close and were terminated. */
  forcedStops = 0;

  constructor(
    size: number,
    private readonly log: Logger,
  ) {
    this.slots = Array.from({ length: size }, () => new Slot(log, () => this.deaths++));
  }

  get size(): number {
    return this.slots.length;
  }

  private model: ModelSpec | null = null;

  /**
   * Loads the encoder and head in every worker: from then on each stream's face finder
   * also runs its stream's inference (FaceFinder.inference), on the worker that holds it.
   */
  async loadModel(spec: ModelSpec): Promise<void> {
    this.model = spec;
    await Promise.all(this.slots.map((s) => s.modelReady(spec)));
  }

  async open(opts: FaceFinderOptions): Promise<FaceFinder> {
    const slot = this.slots.reduce((a, b) => (b.streams < a.streams ? b : a));
    slot.streams++;
    const remote = new RemoteFaces(slot, nextId++, opts, this.model);
    await remote.ready();
    return remote;
  }

  /** Each worker's own memory (a worker that does not answer within a second is left out). */
  async memory(): Promise<Array<ThreadMemory | null>> {
    return Promise.all(
      this.slots.map(
        (s) =>
          new Promise<ThreadMemory | null>((resolve) => {
            const timer = setTimeout(() => resolve(null), 1000);
            s.send(
              { type: 'memory', req: nextReq++ },
              {
                resolve: (r) => {
                  clearTimeout(timer);
                  resolve(r.ok ? (r.memory ?? null) : null);
                },
                reject: () => {
                  clearTimeout(timer);
                  resolve(null);
                },
              },
            );
          }),
      ),
    );
  }

  async close(): Promise<void> {
    const ended = await Promise.all(this.slots.map((s) => s.shutdown(SHUTDOWN_MS)));
    this.forcedStops += ended.filter((e) => !e).length;
  }
}

/** A view of shared memory as it crosses to a worker: by reference, not copied. */
function shared(v: Float32Array): SharedView {
  if (!(v.buffer instanceof SharedArrayBuffer)) throw new Error('inputs for a face worker must be in shared memory');
  return { buffer: v.buffer, offset: v.byteOffset, length: v.length };
}

class RemoteFaces implements FaceFinder {
  private opened: Promise<void> | null = null;
  private generation = -1;
  private scratch: SharedArrayBuffer | null = null;
  private closed = false;

  readonly inference: Inference | null;

  constructor(
    private readonly slot: Slot,
    private readonly id: number,
    private opts: FaceFinderOptions,
    model: ModelSpec | null,
  ) {
    this.inference = model ? this.inferenceOn(model) : null;
  }

  /** The stream's encoder and head calls, run in the same worker as its face finder. */
  private inferenceOn(spec: ModelSpec): Inference {
    return {
      encode: async (faces: Float32Array, n: number): Promise<Embeddings> => {
        await this.slot.modelReady(spec);
        const r = await this.call({ type: 'encode', req: nextReq++, faces: shared(faces), n });
        if (!r.ok) throw new Error(r.error);
        if (!r.emb) throw new Error('the face worker sent no embeddings');
        return r.emb;
      },
      classify: async (app, rel, valid, n) => {
        await this.slot.modelReady(spec);
        const r = await this.call({ type: 'classify', req: nextReq++, app: shared(app), rel: shared(rel), valid: shared(valid), n });
        if (!r.ok) throw new Error(r.error);
        if (!r.probs) throw new Error('the face worker sent no probabilities');
        return r.probs;
      },
    };
  }

  private call(m: WorkerRequest): Promise<WorkerReply> {
    return new Promise((resolve, reject) => this.slot.send(m, { resolve, reject }));
  }

  /** Opens the face finder in the worker; again after the worker was replaced. */
  ready(): Promise<void> {
    if (this.opened && this.generation === this.slot.generation) return this.opened;
    this.generation = this.slot.generation;
    this.opened = this.call({ type: 'open', req: nextReq++, id: this.id, opts: this.opts }).then((r) => {
      if (!r.ok) throw new Error(r.error);
    });
    return this.opened;
  }

  async detect(frame: RgbaFrame, ts: number): Promise<DetectedFace[]> {
    await this.ready();
    let buffer = frame.data.buffer;
    let offset = frame.data.byteOffset;
    if (!(buffer instanceof SharedArrayBuffer)) {
      // a frame not decoded into shared memory crosses by one copy into this stream's scratch
      if (!this.scratch || this.scratch.byteLength < frame.data.length) this.scratch = new SharedArrayBuffer(frame.data.length);
      new Uint8Array(this.scratch, 0, frame.data.length).set(frame.data);
      buffer = this.scratch;
      offset = 0;
    }
    const r = await this.call({
      type: 'detect',
      req: nextReq++,
      id: this.id,
      buffer,
      offset,
      width: frame.width,
      height: frame.height,
      ts,
    });
    if (!r.ok) throw new Error(r.error);
    return r.faces ?? [];
  }

  async setActions(on: boolean): Promise<void> {
    this.opts = { ...this.opts, actions: on };
    const r = await this.call({ type: 'actions', req: nextReq++, id: this.id, on });
    if (!r.ok) throw new Error(r.error);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.slot.streams--;
    await this.call({ type: 'close', req: nextReq++, id: this.id })
      .then((r) => {
        if (!r.ok) this.slot.log.warn({ err: r.error }, 'face finder did not close cleanly');
      })
      // the worker died meanwhile: its sessions went with it
      .catch(() => undefined);
  }
}
