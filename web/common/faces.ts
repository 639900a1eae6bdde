/**
 * Emotion labels and probability bars anchored to face boxes over a <video>. Boxes
 * arrive normalised to the analysed frame, which has the video's aspect; the video is
 * shown with object-fit: contain, so they map through the displayed content rect.
 */
import type { EmotionEvent } from '../../src/publish/events.js';
import { UNCERTAIN } from '../../src/pipeline/labeller.js';

export type { EmotionEvent };

/**
 * What a face's label reads, beside bars of the same smoothed probabilities: an
 * uncertain reading claims no percentage; a shown label gives its own probability, and
 * while the hysteresis still holds it though another leads the bars, it says that it
 * is changing and to what, so the label and the bars never contradict each other.
 */
export function labelText(e: Pick<EmotionEvent, 'label' | 'scores'>): { text: string; changing: boolean } {
  const top = topLabel(e.scores);
  if (e.label === UNCERTAIN) return { text: 'uncertain', changing: false };
  const own = `${e.label} ${Math.round((e.scores[e.label] ?? 0) * 100)}%`;
  return top && top !== e.label ? { text: `${own} → ${top}`, changing: true } : { text: own, changing: false };
}

/** The label with the highest score (the top bar). */
export function topLabel(scores: Record<string, number>): string | null {
  let best: string | null = null;
  for (const [k, v] of Object.entries(scores)) if (best === null || v > scores[best]!) best = k;
  return best;
}

const STALE_MS = 2500;

export class FaceLayer {
  private readonly faces = new Map<string, { el: HTMLElement; seen: number }>();
  frame: { width: number; height: number } | null = null;
  private readonly timer: ReturnType<typeof setInterval>;

  constructor(
    private readonly video: HTMLVideoElement,
    private readonly layer: HTMLElement,
    private readonly o: { bars: boolean; mirror?: boolean } = { bars: true },
  ) {
    this.timer = setInterval(() => this.expire(), 500);
  }

  /** Stops the expiry timer; the layer's element goes with its tile. */
  dispose(): void {
    clearInterval(this.timer);
    this.clear();
  }

  show(e: EmotionEvent): void {
    let f = this.faces.get(e.track);
    if (!f) {
      const el = document.createElement('div');
      el.className = 'face';
      el.dataset['track'] = e.track;
      el.innerHTML =
        '<div class="label"></div><div class="away">looking away</div><div class="bars"></div>' +
        '<div class="va" title="valence (left to right) and arousal (bottom to top) of the shown expression"><i></i></div>';
      this.layer.appendChild(el);
      f = { el, seen: 0 };
      this.faces.set(e.track, f);
    }
    f.seen = performance.now();
    f.el.dataset['label'] = e.label;
    const t = labelText(e);
    f.el.querySelector('.label')!.textContent = t.text;
    f.el.dataset['changing'] = String(t.changing);
    f.el.dataset['away'] = String(e.attention.looking === false);
    const dot = f.el.querySelector<HTMLElement>('.va i')!;
    dot.style.left = `${Math.round(((e.valence + 1) / 2) * 100)}%`;
    dot.style.top = `${Math.round(((1 - e.arousal) / 2) * 100)}%`;
    if (this.o.bars) {
      const bars = f.el.querySelector('.bars')!;
      // built as elements with CSSOM widths: the pages' Content-Security-Policy allows no inline style attributes
      bars.replaceChildren(
        ...Object.entries(e.scores)
          .sort((a, b) => b[1] - a[1])
          .slice(0, 4)
          .map(([k, v]) => {
            const row = document.createElement('div');
            row.className = k === e.label ? 'bar shown' : 'bar';
            const name = document.createElement('span');
            name.textContent = k;
            const fill = document.createElement('i');
            fill.style.width = `${Math.round(v * 100)}%`;
            row.append(name, fill);
            return row;
          }),
      );
    }
    this.place(f.el, e.box);
  }

  remove(track: string): void {
    this.faces.get(track)?.el.remove();
    this.faces.delete(track);
  }

  clear(): void {
    for (const t of [...this.faces.keys()]) this.remove(t);
  }

  get count(): number {
    return this.faces.size;
  }

  private place(el: HTMLElement, b: EmotionEvent['box']): void {
    const fw = this.frame?.width ?? this.video.videoWidth;
    const fh = this.frame?.height ?? this.video.videoHeight;
    const vw = this.video.clientWidth;
    const vh = this.video.clientHeight;
    // before the video's first frame its size is unknown: a label drawn then would sit at
    // the tile's corner, so it stays hidden until it can be placed over the face
    el.hidden = !fw || !fh || !vw || !vh;
    if (el.hidden) return;
    const s = Math.min(vw / fw, vh / fh);
    const ox = (vw - fw * s) / 2;
    const oy = (vh - fh * s) / 2;
    const cw = fw * s;
    const ch = fh * s;
    const x = this.o.mirror ? 1 - b.x - b.w : b.x;
    Object.assign(el.style, {
      left: `${ox + x * cw}px`,
      top: `${oy + b.y * ch}px`,
      width: `${b.w * cw}px`,
      height: `${b.h * ch}px`,
    });
  }

  private expire(): void {
    const now = performance.now();
    for (const [t, f] of this.faces) if (now - f.seen > STALE_MS) this.remove(t);
  }
}
