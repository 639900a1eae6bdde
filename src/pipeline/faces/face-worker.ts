/**
 * A worker thread that runs face finders (YuNet or MediaPipe), one per stream it was
 * given, so finding faces runs beside the main thread instead of on it. Frames arrive
 * as views of shared memory: nothing is copied to cross the thread.
 */
import { parentPort } from 'node:worker_threads';
import type { DetectedFace } from './face.js';
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
  { req: number; ok: true; faces?: DetectedFace[]; memory?: ThreadMemory } | { req: number; ok: false; error: string };

const port = parentPort;
if (!port) throw new Error('face-worker runs as a worker thread');
const open = new Map<number, StreamFaces>();

let ending = false;

async function handle(m: WorkerRequest): Promise<WorkerReply> {
  // a request that was queued behind the shutdown would open a session nobody releases
  if (ending) return { req: m.req, ok: false, error: 'the face worker is shutting down' };
  if (m.type === 'open') {
    open.set(m.id, await StreamFaces.create(m.opts));
    return { req: m.req, ok: true };
  }
  if (m.type === 'memory') return { req: m.req, ok: true, memory: threadMemory() };
  if (m.type === 'shutdown') {
    ending = true;
    const all = [...open.values()];
    open.clear();
    await Promise.all(all.map((f) => f.close()));
    await YuNetFaces.releaseSessions();
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
    port.postMessage(reply);
    // nothing else holds the thread open: it ends once the reply is out
    if (m.type === 'shutdown') port.close();
  });
});
