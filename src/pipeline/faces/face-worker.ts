/**
 * A worker thread that runs face finders (YuNet or MediaPipe), one per stream it was
 * given, and, once asked to load it, the model's encoder and head for those streams, so
 * the analysis runs on every core while the main thread keeps signaling, routing and
 * publishing. Frames and face crops arrive as views of shared memory (crops are copied
 * once here, for onnxruntime); embeddings and probabilities come back transferred.
 */
import { parentPort } from 'node:worker_threads';
import { silentLogger } from '../../log.js';
import { Arpgnet, type Embeddings, type ModelFiles } from '../../model/arpgnet.js';
import type { SessionOptions } from '../../model/session.js';
import type { DetectedFace, SharedView } from './face.js';
import { StreamFaces, type FaceFinderOptions } from './stream-faces.js';
import { YuNetFaces } from './yunet.js';

export type WorkerRequest =
  | { type: 'open'; req: number; id: number; opts: FaceFinderOptions }
  | {
      type: 'detect';
      req: number;
      id: number;
      buffer: SharedArrayBuffer | ArrayBuffer;
      offset: number;
      width: number;
      height: number;
      ts: number;
    }
  | { type: 'actions'; req: number; id: number; on: boolean }
  /** Loads the encoder and head here (once; again after a respawn). */
  | { type: 'model'; req: number; files: ModelFiles; opts: SessionOptions }
  /** n aligned faces [n, C, H, W] in shared memory -> their embeddings. */
  | { type: 'encode'; req: number; faces: SharedView; n: number }
  /** n windows [n, T, D] (and valid [n, T]) -> class probabilities [n, classes]. */
  | { type: 'classify'; req: number; app: SharedView; rel: SharedView; valid: SharedView; n: number }
  | { type: 'close'; req: number; id: number }
  /** This thread's V8 heap and the memory V8 knows of outside it (see ThreadMemory). */
  | { type: 'memory'; req: number }
  /** Releases every session, replies, then lets the thread end by itself (see FacePool.close). */
  | { type: 'shutdown'; req: number };

/** A worker thread's own V8 heap, and what its isolate holds outside it (bytes). */
export interface ThreadMemory {
  heap: number;
  external: number;
  arrayBuffers: number;
}

// in a worker, memoryUsage's heap, external and arrayBuffers are this isolate's (rss is the process's)
function threadMemory(): ThreadMemory {
  const m = process.memoryUsage();
  return { heap: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers };
}

export type WorkerReply =
  | { req: number; ok: true; faces?: DetectedFace[]; memory?: ThreadMemory; emb?: Embeddings; probs?: Float32Array }
  | { req: number; ok: false; error: string };

const port = parentPort;
if (!port) throw new Error('face-worker runs as a worker thread');
const open = new Map<number, StreamFaces>();
let model: Promise<Arpgnet> | null = null;
/**
 * onnxruntime refuses shared memory ("Invalid argument"): each input is copied into this
 * thread's own buffer for its kind (requests run one at a time, so one of each is enough).
 */
const own = new Map<string, Float32Array>();
function scratch(kind: 'faces' | 'app' | 'rel' | 'valid', length: number): Float32Array {
  let b = own.get(kind);
  if (!b || b.length < length) own.set(kind, (b = new Float32Array(length)));
  return b.subarray(0, length);
}
function view(v: SharedView, kind: 'app' | 'rel' | 'valid'): Float32Array {
  const out = scratch(kind, v.length);
  out.set(new Float32Array(v.buffer, v.offset, v.length));
  return out;
}

async function loaded(): Promise<Arpgnet> {
  if (!model) throw new Error('no model loaded in this worker');
  return model;
}

let ending = false;

async function handle(m: Exclude<WorkerRequest, EncodeRequest>): Promise<WorkerReply> {
  // a request that was queued behind the shutdown would open a session nobody releases
  if (ending) return { req: m.req, ok: false, error: 'the face worker is shutting down' };
  if (m.type === 'open') {
    open.set(m.id, await StreamFaces.create(m.opts));
    return { req: m.req, ok: true };
  }
  if (m.type === 'memory') return { req: m.req, ok: true, memory: threadMemory() };
  if (m.type === 'model') {
    // the main thread loaded the same files already and logged which provider each got
    model ??= Arpgnet.load(m.files, m.opts, silentLogger).then(async (a) => (await a.warmup(), a));
    model.catch(() => (model = null));
    await model;
    return { req: m.req, ok: true };
  }
  if (m.type === 'classify')
    return {
      req: m.req,
      ok: true,
      probs: await (await loaded()).classify(view(m.app, 'app'), view(m.rel, 'rel'), view(m.valid, 'valid'), m.n),
    };
  if (m.type === 'shutdown') {
    ending = true;
    const all = [...open.values()];
    open.clear();
    await Promise.all(all.map((f) => f.close()));
    await YuNetFaces.releaseSessions();
    const a = await model?.catch(() => null);
    model = null;
    await a?.release();
    return { req: m.req, ok: true };
  }
  const lm = open.get(m.id);
  if (!lm) return { req: m.req, ok: false, error: `no face finder ${m.id} in this worker` };
  switch (m.type) {
    case 'detect': {
      const data = new Uint8Array(m.buffer, m.offset, m.width * m.height * 4);
      return { req: m.req, ok: true, faces: await lm.detect({ data, width: m.width, height: m.height }, m.ts) };
    }
    case 'actions':
      await lm.setActions(m.on);
      return { req: m.req, ok: true };
    case 'close':
      open.delete(m.id);
      await lm.close();
      return { req: m.req, ok: true };
  }
}

/** Results made here for the main thread are handed over, not copied. */
function transferable(r: WorkerReply): ArrayBuffer[] {
  if (!r.ok) return [];
  const out: ArrayBuffer[] = [];
  for (const v of [r.emb?.app, r.emb?.rel, r.probs])
    if (v && v.buffer instanceof ArrayBuffer && !out.includes(v.buffer)) out.push(v.buffer);
  return out;
}

function reply(r: WorkerReply): void {
  try {
    port!.postMessage(r, transferable(r));
  } catch {
    // a buffer that cannot be handed over (held by the runtime) is copied instead
    port!.postMessage(r);
  }
}

type EncodeRequest = Extract<WorkerRequest, { type: 'encode' }>;

/** Faces one encoder run takes at most, so one run's latency stays bounded whatever waits. */
const MAX_BATCH_FACES = 16;

/**
 * The encode requests waiting here (each stream has at most one in flight) as one
 * encoder run, so a loaded worker makes fewer, larger runs: a queue forms exactly when
 * the worker is loaded, so batching costs no waiting (what it saves per face is not
 * measured on its own: bench:serve measures the whole path).
 */
async function encodeBatch(batch: EncodeRequest[]): Promise<void> {
  try {
    if (ending) throw new Error('the face worker is shutting down');
    const a = await loaded();
    const { width, height } = a.preprocess.inputSize;
    const perFace = a.channels * width * height;
    const n = batch.reduce((k, m) => k + m.n, 0);
    const all = scratch('faces', n * perFace);
    let f = 0;
    for (const m of batch) {
      if (m.faces.length < m.n * perFace) throw new Error(`an encode request holds ${m.faces.length} values, not ${m.n} faces`);
      all.set(new Float32Array(m.faces.buffer, m.faces.offset, m.n * perFace), f * perFace);
      f += m.n;
    }
    const emb = await a.encode(all, n);
    const da = emb.app.length / n;
    const dr = emb.rel.length / n;
    // one request: its embeddings as they came, nothing to split
    if (batch.length === 1) return reply({ req: batch[0]!.req, ok: true, emb });
    f = 0;
    for (const m of batch) {
      reply({ req: m.req, ok: true, emb: { app: emb.app.slice(f * da, (f + m.n) * da), rel: emb.rel.slice(f * dr, (f + m.n) * dr) } });
      f += m.n;
    }
  } catch (e) {
    for (const m of batch) reply({ req: m.req, ok: false, error: (e as Error).message });
  }
}

// one request at a time, in order (encodes gathered into one run): MediaPipe's VIDEO mode
// needs increasing timestamps per stream, and a stream's YuNet input buffer is reused
const waiting: WorkerRequest[] = [];
let pumping = false;

async function pump(): Promise<void> {
  pumping = true;
  while (waiting.length) {
    const m = waiting.shift()!;
    if (m.type === 'encode') {
      const batch: EncodeRequest[] = [m];
      let faces = m.n;
      for (let i = 0; i < waiting.length && faces < MAX_BATCH_FACES;) {
        const o = waiting[i]!;
        if (o.type === 'encode' && faces + o.n <= MAX_BATCH_FACES) {
          batch.push(o);
          faces += o.n;
          waiting.splice(i, 1);
        } else i++;
      }
      await encodeBatch(batch);
      continue;
    }
    let r: WorkerReply;
    try {
      r = await handle(m);
    } catch (e) {
      r = { req: m.req, ok: false, error: (e as Error).message };
    }
    reply(r);
    // nothing else holds the thread open: it ends once the reply is out
    if (m.type === 'shutdown') port!.close();
  }
  pumping = false;
}

port.on('message', (m: WorkerRequest) => {
  waiting.push(m);
  if (!pumping) void pump();
});
