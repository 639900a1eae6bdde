import { Webhook } from 'standardwebhooks';
import type { Logger } from '../log.js';

/**
 * Events POSTed to configured endpoints for backends that cannot hold a WebSocket open,
 * signed by the Standard Webhooks scheme (webhook-id, webhook-timestamp and
 * webhook-signature headers; an HMAC-SHA256 over id.timestamp.body with the endpoint's
 * whsec_ secret), which the client package verifies. Each endpoint has its own bounded
 * queue and one delivery in flight, in order; a delivery that fails (not 2xx, refused,
 * timed out) is tried again with a growing pause, and given up after maxAttempts.
 * Nothing here is awaited by the analysis: a dead receiver costs its own queue only,
 * whose oldest deliveries are dropped (and counted) when it is full.
 */
export interface WebhookEndpoint {
  url: string;
  secret: string;
  /** Event types sent to it. */
  events: readonly string[];
}

export interface WebhookOptions {
  endpoints: readonly WebhookEndpoint[];
  maxQueue: number;
  timeoutMs: number;
  maxAttempts: number;
  /** The first retry's pause; each one after doubles it, up to 30 s. */
  retryMs: number;
}

export type Outcome = 'delivered' | 'retried' | 'failed' | 'dropped';

interface Delivery {
  id: string;
  type: string;
  body: string;
  attempts: number;
}

const MAX_PAUSE_MS = 30_000;

class Endpoint {
  readonly queue: Delivery[] = [];
  private busy = false;
  private timer: NodeJS.Timeout | null = null;
  private readonly signer: Webhook;

  constructor(
    readonly o: WebhookEndpoint,
    private readonly w: Webhooks,
  ) {
    this.signer = new Webhook(o.secret);
  }

  push(d: Delivery): void {
    this.queue.push(d);
    while (this.queue.length > this.w.o.maxQueue) {
      this.queue.shift();
      this.w.count('dropped');
    }
    this.next();
  }

  private next(): void {
    if (this.busy || this.timer || this.w.closed) return;
    const d = this.queue[0];
    if (!d) return;
    this.busy = true;
    void this.send(d).then((ok) => {
      this.busy = false;
      if (this.queue[0] !== d) return this.next(); // dropped from the queue meanwhile
      if (ok || d.attempts >= this.w.o.maxAttempts) {
        this.queue.shift();
        this.w.count(ok ? 'delivered' : 'failed');
        if (!ok) this.w.log.warn({ url: this.o.url, id: d.id, attempts: d.attempts }, 'webhook given up');
        return this.next();
      }
      this.w.count('retried');
      const pause = Math.min(MAX_PAUSE_MS, this.w.o.retryMs * 2 ** (d.attempts - 1));
      this.timer = setTimeout(() => {
        this.timer = null;
        this.next();
      }, pause);
      this.timer.unref();
    });
  }

  private async send(d: Delivery): Promise<boolean> {
    d.attempts++;
    const at = new Date();
    try {
      const res = await fetch(this.o.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'webhook-id': d.id,
          'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
          'webhook-signature': this.signer.sign(d.id, at, d.body),
        },
        body: d.body,
        signal: AbortSignal.timeout(this.w.o.timeoutMs),
        redirect: 'error',
      });
      await res.body?.cancel();
      return res.ok;
    } catch {
      return false;
    }
  }

  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}

export class Webhooks {
  closed = false;
  readonly counts: Record<Outcome, number> = { delivered: 0, retried: 0, failed: 0, dropped: 0 };
  private readonly endpoints: Endpoint[];

  constructor(
    readonly o: WebhookOptions,
    readonly log: Logger,
  ) {
    this.endpoints = o.endpoints.map((e) => new Endpoint(e, this));
  }

  get size(): number {
    return this.endpoints.length;
  }

  /** Deliveries waiting, over every endpoint. */
  get queued(): number {
    return this.endpoints.reduce((n, e) => n + e.queue.length, 0);
  }

  count(o: Outcome): void {
    this.counts[o]++;
  }

  /** Queues one event for every endpoint that takes its type; `id` stays the same on every retry (receivers deduplicate by it). */
  send(id: string, type: string, body: string): void {
    for (const e of this.endpoints) if (e.o.events.includes(type)) e.push({ id, type, body, attempts: 0 });
  }

  close(): void {
    this.closed = true;
    for (const e of this.endpoints) e.close();
  }
}

/** True when the body and the Standard Webhooks headers were signed with `secret` (and the timestamp is within 5 minutes). */
export function verifyWebhook(secret: string, body: string, headers: Record<string, string | string[] | undefined>): boolean {
  const h = (k: string): string => {
    const v = headers[k];
    return Array.isArray(v) ? (v[0] ?? '') : (v ?? '');
  };
  try {
    new Webhook(secret).verify(body, {
      'webhook-id': h('webhook-id'),
      'webhook-timestamp': h('webhook-timestamp'),
      'webhook-signature': h('webhook-signature'),
    });
    return true;
  } catch {
    return false;
  }
}
