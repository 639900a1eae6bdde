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
function view(v: SharedView, kind: 'faces' | 'app' | 'rel' | 'valid'): Float32Array {
  let b = own.get(kind);
  if (!b || b.length < v.length) own.set(kind, (b = new Float32Array(v.length)));
  const out = b.subarray(0, v.length);
  out.set(new Float32Array(v.buffer, v.offset, v.length));
  return out;
}

async function loaded(): Promise<Arpgnet> {
  if (!model) throw new Error('no model loaded in this worker');
  return model;
}

let ending = false;

async function handle(m: WorkerRequest): Promise<WorkerReply> {
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
  if (m.type === 'encode') return { req: m.req, ok: true, emb: await (await loaded()).encode(view(m.faces, 'faces'), m.n) };
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

// one request at a time, in order: MediaPipe's VIDEO mode needs increasing timestamps per stream,
// and a stream's YuNet input buffer is reused
let queue: Promise<void> = Promise.resolve();
port.on('message', (m: WorkerRequest) => {
  queue = queue.then(async () => {
    let reply: WorkerReply;
    try {
      reply = await handle(m);
    } catch (e) {
      reply = { req: m.req, ok: false, error: (e as Error).message };
    }
    try {
      port.postMessage(reply, transferable(reply));
    } catch {
      // a buffer that cannot be handed over (held by the runtime) is copied instead
      port.postMessage(reply);
    }
    // nothing else holds the thread open: it ends once the reply is out
    if (m.type === 'shutdown') port.close();
  });
});
