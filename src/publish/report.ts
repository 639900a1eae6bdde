import { writeFile } from 'node:fs/promises';
import type { EmotionEvent, PipelineEvent } from './events.js';

const COLOURS: Record<string, string> = {
  anger: '#d62728',
  disgust: '#8c564b',
  fear: '#9467bd',
  happiness: '#f2b701',
  sadness: '#1f77b4',
  surprise: '#17becf',
  neutral: '#7f7f7f',
  contempt: '#2ca02c',
};
const colour = (label: string, i: number): string => COLOURS[label] ?? `hsl(${(i * 67) % 360} 60% 45%)`;
const esc = (s: string): string => s.replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);

function chart(stream: string, track: string, events: EmotionEvent[], labels: readonly string[], endMs: number): string {
  const W = 900,
    H = 220,
    L = 44,
    R = 12,
    T = 14,
    B = 46;
  const x = (ts: number): number => L + ((W - L - R) * ts) / Math.max(1, endMs);
  const y = (p: number): number => T + (H - T - B) * (1 - p);
  const lines = labels.map((l, i) => {
    const pts = events.map((e) => `${x(e.ts).toFixed(1)},${y(e.scores[l] ?? 0).toFixed(1)}`).join(' ');
    return `<polyline fill="none" stroke="${colour(l, i)}" stroke-width="2" points="${pts}"><title>${esc(l)}</title></polyline>`;
  });
  // a band under the plot: the published label over time
  const band = events.map((e, k) => {
    const next = events[k + 1]?.ts ?? e.ts + 100;
    return `<rect x="${x(e.ts).toFixed(1)}" y="${H - B + 8}" width="${Math.max(1, x(next) - x(e.ts)).toFixed(1)}" height="10" fill="${colour(e.label, labels.indexOf(e.label))}"><title>${(e.ts / 1000).toFixed(2)} s: ${esc(e.label)} ${(e.confidence * 100).toFixed(0)}%</title></rect>`;
  });
  const ticks = Array.from(
    { length: Math.floor(endMs / 1000) + 1 },
    (_, s) => `<text x="${x(s * 1000)}" y="${H - 8}" font-size="11" text-anchor="middle">${s}s</text>`,
  );
  const grid = [0, 0.5, 1].map(
    (p) =>
      `<line x1="${L}" x2="${W - R}" y1="${y(p)}" y2="${y(p)}" stroke="#ddd"/><text x="${L - 6}" y="${y(p) + 4}" font-size="11" text-anchor="end">${p}</text>`,
  );
  return `<h2>face ${esc(track)} <small>${esc(stream)}</small></h2><svg viewBox="0 0 ${W} ${H}" width="100%" role="img" aria-label="emotion probabilities of face ${esc(track)}">${grid.join('')}${lines.join('')}${band.join('')}${ticks.join('')}</svg>`;
}

/** A self-contained HTML page: each face's emotion probabilities over media time. */
export function renderReport(events: readonly PipelineEvent[], labels: readonly string[]): string {
  const emotions = events.filter((e): e is EmotionEvent => e.type === 'emotion');
  const byTrack = new Map<string, EmotionEvent[]>();
  for (const e of emotions) {
    const key = JSON.stringify([e.stream, e.track]);
    const list = byTrack.get(key) ?? [];
    list.push(e);
    byTrack.set(key, list);
  }
  const endMs = Math.max(1000, ...events.map((e) => e.ts));
  const start = events.find((e) => e.type === 'stream_start');
  const legend = labels.map((l, i) => `<span style="color:${colour(l, i)}">&#9632; ${esc(l)}</span>`).join(' ');
  const body = byTrack.size
    ? [...byTrack]
        .map(([key, evs]) => {
          const [stream, track] = JSON.parse(key) as [string, string];
          return chart(stream, track, evs, labels, endMs);
        })
        .join('\n')
    : '<p>No face was classified in this stream.</p>';
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>arpgnet-edge report</title>
<style>body{font:14px system-ui,sans-serif;margin:24px;max-width:960px}h1{font-size:20px}h2{font-size:15px;margin:18px 0 4px}span{margin-right:12px}</style></head>
<body><h1>Emotion timeline${start && start.type === 'stream_start' ? `: ${esc(start.source.uri)}` : ''}</h1>
<p>${legend}</p><p>Lines: class probabilities of each emotion event (smoothed over windows). Band: the published label.</p>
${body}</body></html>\n`;
}

export async function writeReport(file: string, events: readonly PipelineEvent[], labels: readonly string[]): Promise<void> {
  await writeFile(file, renderReport(events, labels));
}
