/**
 * For a backend that receives the server's webhooks: check each delivery's Standard
 * Webhooks signature before trusting its body, and deduplicate by its webhook-id
 * (a retried delivery keeps its id).
 */
export { verifyWebhook } from '../publish/webhooks.js';
export type { HubEvent, SummaryEvent, StreamStartEvent, StreamEndEvent } from '../publish/events.js';
