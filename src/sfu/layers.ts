import type { types } from 'mediasoup';
import type { Config } from '../config.js';
import { analysisSize } from '../ingest/ffmpeg.js';

/** analysis.layer */
export type LayerChoice = Config['analysis']['layer'];

export interface AnalysisPicture {
  /** The simulcast layer the analysis consumer asks for (absent: the producer sends one). */
  preferredLayers?: { spatialLayer: number };
  layer: LayerChoice | null;
  /** What the decoder writes: the chosen layer's picture at the analysis size, never scaled up. */
  width: number;
  height: number;
}

/**
 * The smallest adequate picture for a call's analysis: a page that publishes simulcast
 * (web/common/call.ts) sends a half-size layer beside the full one, and decoding that
 * costs about a quarter. A producer that says its faces are far away (the kiosk:
 * `appData.layer` 'high') or `analysis.layer` 'high' gets the full picture: faces at
 * kiosk distance are 24-40 px high at full size and would be too small at half.
 */
export function analysisPicture(producer: types.Producer, maxSide: number, choice: LayerChoice): AnalysisPicture {
  const declared = producer.appData as { width?: unknown; height?: unknown; layer?: unknown; lowScale?: unknown };
  const w = typeof declared.width === 'number' && declared.width > 0 ? declared.width : 640;
  const h = typeof declared.height === 'number' && declared.height > 0 ? declared.height : 480;
  const encodings = producer.rtpParameters.encodings ?? [];
  if (producer.type !== 'simulcast' || encodings.length < 2) return { layer: null, ...analysisSize(w, h, maxSide) };
  if (choice === 'high' || declared.layer === 'high')
    return { layer: 'high', preferredLayers: { spatialLayer: encodings.length - 1 }, ...analysisSize(w, h, maxSide) };
  // mediasoup orders the encodings from the lowest layer up and does not keep their scale:
  // the page declares the top layer's size and how much smaller the lowest is (2 if not said)
  const scale = typeof declared.lowScale === 'number' && declared.lowScale >= 1 ? declared.lowScale : 2;
  return {
    layer: 'low',
    preferredLayers: { spatialLayer: 0 },
    ...analysisSize(Math.max(2, Math.round(w / scale)), Math.max(2, Math.round(h / scale)), maxSide),
  };
}
