import { appendFileSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';

/**
 * What a deployment analyses people's expressions for. The EU AI Act forbids emotion
 * recognition at the workplace and in education except for medical or safety reasons
 * (Art. 5(1)(f)) and requires telling people when it is used (Art. 50(3)); PRIVACY.md
 * says what each purpose means here.
 */
export const PURPOSES = ['personal', 'research', 'entertainment', 'accessibility', 'workplace', 'education', 'other'] as const;
export type Purpose = (typeof PURPOSES)[number];
export const EXEMPTIONS = ['medical', 'safety'] as const;
export type Exemption = (typeof EXEMPTIONS)[number];

/** Refuses a purpose the law forbids emotion recognition for, unless it is declared medical or safety. */
export function checkPurpose(purpose: Purpose, exemption?: Exemption): void {
  if ((purpose === 'workplace' || purpose === 'education') && !exemption)
    throw new Error(
      `privacy.purpose '${purpose}': emotion recognition at the workplace or in education is prohibited by the EU AI Act, Art. 5(1)(f), ` +
        "unless it is for medical or safety reasons (set privacy.exemption to 'medical' or 'safety' only if that is true); see PRIVACY.md",
    );
}

export interface ConsentRecord {
  room: string;
  /** The token's identity when tokens are on, else the name the participant gave. */
  identity: string;
  peer: string;
  /** The participant's video producers at the time: the streams the consent covers. */
  streams: string[];
  consent: boolean;
  reason: 'join' | 'changed' | 'left';
}

/**
 * Consent given and withdrawn, appended one JSON line at a time: when, which room,
 * who, which streams. Never an image, a face or an emotion.
 */
export class ConsentAudit {
  written = 0;

  constructor(private readonly file: string | undefined) {
    if (file) mkdirSync(dirname(file), { recursive: true });
  }

  record(r: ConsentRecord): void {
    if (!this.file) return;
    appendFileSync(this.file, `${JSON.stringify({ time: new Date().toISOString(), ...r })}\n`, { flag: 'a', mode: 0o600 });
    this.written++;
  }
}
