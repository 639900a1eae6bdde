import { readdirSync, statSync } from 'node:fs';
import { extname, join } from 'node:path';
import { labelIndex } from '../model/labels.js';
import { IMAGE_EXT } from '../ingest/still-image.js';

export type Format = 'images' | 'sequences';

export interface Sample {
  path: string;
  label: number;
}

export interface Skipped {
  path: string;
  reason: string;
}

/**
 * DIR/<class>/<entry>: entries are images or sequence folders. A class folder the model
 * has no label for, or an empty one, is skipped with its reason (the rest is evaluated);
 * only a DIR without any class folder is an error.
 */
export function listSamples(
  dir: string,
  format: Format,
  labels: readonly string[],
  limit?: number,
): { samples: Sample[]; skipped: Skipped[] } {
  let classes: string[];
  try {
    classes = readdirSync(dir)
      .filter((c) => statSync(join(dir, c)).isDirectory())
      .sort();
  } catch {
    throw new Error(`${dir}: not a readable folder`);
  }
  if (!classes.length) throw new Error(`${dir}: no class folders (expected ${dir}/<class>/...)`);
  const samples: Sample[] = [];
  const skipped: Skipped[] = [];
  for (const c of classes) {
    const label = labelIndex(c, labels);
    if (typeof label === 'string') {
      skipped.push({ path: join(dir, c), reason: label });
      continue;
    }
    const entries = readdirSync(join(dir, c))
      .sort()
      .filter((e) => (format === 'images' ? IMAGE_EXT.has(extname(e).toLowerCase()) : statSync(join(dir, c, e)).isDirectory()));
    if (!entries.length) {
      skipped.push({ path: join(dir, c), reason: `empty class folder (no ${format === 'images' ? 'images' : 'sequence folders'})` });
      continue;
    }
    samples.push(...entries.slice(0, limit ?? entries.length).map((e) => ({ path: join(dir, c, e), label })));
  }
  return { samples, skipped };
}

/** The frames of one sequence folder, sorted by name. */
export function sequenceFrames(dir: string): string[] {
  return readdirSync(dir)
    .filter((f) => IMAGE_EXT.has(extname(f).toLowerCase()))
    .sort()
    .map((f) => join(dir, f));
}
