/**
 * A worker thread that runs MediaPipe landmarkers, one per stream it was given, so
 * landmarking (the largest cost per frame) runs beside the main thread instead of on
 * it. Frames arrive as views of shared memory: nothing is copied to cross the thread.
 */
import { parentPort } from 'node:worker_threads';
import { FaceLandmarks, type LandmarkerOptions } from './landmarker.js';

export type WorkerRequest =
  | { type: 'open'; req: number; id: number; opts: LandmarkerOptions }
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
  | { type: 'close'; req: number; id: number };

export type WorkerReply =
  { req: number; ok: true; faces?: ReturnType<FaceLandmarks['detect']> } | { req: number; ok: false; error: string };

const port = parentPort;
if (!port) throw new Error('landmark-worker runs as a worker thread');
const open = new Map<number, FaceLandmarks>();

async function handle(m: WorkerRequest): Promise<WorkerReply> {
  if (m.type === 'open') {
    open.set(m.id, await FaceLandmarks.create(m.opts));
    return { req: m.req, ok: true };
  }
  const lm = open.get(m.id);
  if (!lm) return { req: m.req, ok: false, error: `no landmarker ${m.id} in this worker` };
  switch (m.type) {
    case 'detect': {
      const data = new Uint8Array(m.buffer, m.offset, m.width * m.height * 4);
      return { req: m.req, ok: true, faces: lm.detect({ data, width: m.width, height: m.height }, m.ts) };
    }
    case 'actions':
      await lm.setActions(m.on);
      return { req: m.req, ok: true };
    case 'close':
      lm.close();
      open.delete(m.id);
      return { req: m.req, ok: true };
  }
}

// one request at a time, in order: MediaPipe's VIDEO mode needs increasing timestamps per stream
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
  });
});
