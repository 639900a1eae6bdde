import type { Affect, Summary } from '../../publish/events.js';

/**
 * What a face's readings add up to: media time per shown label (each reading holds
 * the label for the time since the one before it, so the label times always sum to the
 * analysed time), and time-weighted means of valence, arousal and attention. Also
 * summed over faces for a room.
 */
export class Tally {
  analysedMs = 0;
  readonly labelMs: Record<string, number> = {};
  readings = 0;
  private valenceMs = 0;
  private arousalMs = 0;
  /** Time with a head pose, and of it facing the screen. */
  private posedMs = 0;
  private lookingMs = 0;

  add(label: string, dtMs: number, affect: Affect, looking: boolean | null): void {
    this.readings++;
    this.analysedMs += dtMs;
    this.labelMs[label] = (this.labelMs[label] ?? 0) + dtMs;
    this.valenceMs += affect.valence * dtMs;
    this.arousalMs += affect.arousal * dtMs;
    if (looking === null) return;
    this.posedMs += dtMs;
    if (looking) this.lookingMs += dtMs;
  }

  /** Adds another tally's summary (a face's, into its room's). */
  merge(s: Summary): void {
    this.readings += s.readings;
    this.analysedMs += s.analysedMs;
    for (const [l, ms] of Object.entries(s.labelMs)) this.labelMs[l] = (this.labelMs[l] ?? 0) + ms;
    this.valenceMs += (s.valence ?? 0) * s.analysedMs;
    this.arousalMs += (s.arousal ?? 0) * s.analysedMs;
    if (s.attentive === null) return;
    this.posedMs += s.analysedMs;
    this.lookingMs += s.attentive * s.analysedMs;
  }

  summary(): Summary {
    const t = this.analysedMs;
    return {
      analysedMs: t,
      labelMs: { ...this.labelMs },
      readings: this.readings,
      valence: t > 0 ? this.valenceMs / t : null,
      arousal: t > 0 ? this.arousalMs / t : null,
      attentive: this.posedMs > 0 ? this.lookingMs / this.posedMs : null,
    };
  }
}

/** One face's tally and when its readings began, ended and were last summarised. */
export class FaceSummary {
  readonly tally = new Tally();
  fromTs: number | null = null;
  private lastTs: number | null = null;
  lastSentTs: number;

  constructor(
    /** The longest a reading may be held for (the track's maxGapMs): a gap is not time analysed. */
    private readonly maxHoldMs: number,
    startTs: number,
  ) {
    this.lastSentTs = startTs;
  }

  add(ts: number, label: string, affect: Affect, looking: boolean | null): void {
    this.fromTs ??= ts;
    const dt = this.lastTs === null ? 0 : Math.min(Math.max(0, ts - this.lastTs), this.maxHoldMs);
    this.lastTs = ts;
    this.tally.add(label, dt, affect, looking);
  }

  /** Due for a periodic summary (everyMs null: never). */
  due(ts: number, everyMs: number | null): boolean {
    return everyMs !== null && this.tally.readings > 0 && ts - this.lastSentTs >= everyMs;
  }
}
