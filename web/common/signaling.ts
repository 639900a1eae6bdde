import type { Notification } from '../../src/sfu/protocol.js';

export type { Notification };

/** Request/response over the /signaling WebSocket, plus server notifications (shapes: src/sfu/protocol.ts). */
export class Signaling {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (d: unknown) => void; reject: (e: Error) => void }>();
  onNotification: (n: Notification) => void = () => {};
  onClose: () => void = () => {};

  private constructor(private readonly ws: WebSocket) {
    ws.addEventListener('message', (ev) => {
      const msg = JSON.parse(String(ev.data)) as {
        id?: number | null;
        ok?: boolean;
        data?: unknown;
        error?: { code: string; message: string };
        notification?: boolean;
        method?: string;
      };
      if (msg.notification) return this.onNotification({ method: msg.method, data: msg.data } as Notification);
      const p = msg.id != null ? this.pending.get(msg.id) : undefined;
      if (!p) return console.warn('signaling:', msg.error?.message ?? msg);
      this.pending.delete(msg.id!);
      if (msg.ok) p.resolve(msg.data);
      else p.reject(new Error(msg.error ? `${msg.error.code}: ${msg.error.message}` : 'request failed'));
    });
    ws.addEventListener('close', () => {
      for (const p of this.pending.values()) p.reject(new Error('signaling connection closed'));
      this.pending.clear();
      this.onClose();
    });
  }

  static open(url: string): Promise<Signaling> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url);
      ws.addEventListener('open', () => resolve(new Signaling(ws)), { once: true });
      ws.addEventListener('error', () => reject(new Error(`cannot reach ${url}`)), { once: true });
    });
  }

  request<T>(method: string, data: object = {}): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (d: unknown) => void, reject });
      this.ws.send(JSON.stringify({ id, method, data }));
    });
  }

  close(): void {
    this.ws.close();
  }
}

export const wsUrl = (path: string): string => `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}${path}`;
