import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The project's root folder (holds package.json and models/). */
export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/**
 * The folder of shared models and data sets beside the project: the argument, else
 * ARPGNET_SHARED, else ../shared next to the project root.
 */
export function sharedDir(arg?: string): string {
  return resolve(arg || process.env['ARPGNET_SHARED'] || resolve(ROOT, '..', 'shared'));
}

/** Where MediaPipe's face_landmarker.task lives: config, else env, else the shared models folder. */
export function mediapipeModelsDir(arg?: string): string {
  const explicit = arg || process.env['ARPGNET_MODELS_DIR'];
  if (explicit) return resolve(explicit);
  const fromShared = resolve(sharedDir(), 'models');
  return existsSync(fromShared) ? fromShared : resolve(ROOT, '.cache', 'models');
}
