/** Dataset class-folder names and the model label each one means (the same table as training/arpgnet/data.py). */
const SYNONYMS: Record<string, string> = {
  anger: 'anger',
  angry: 'anger',
  an: 'anger',
  disgust: 'disgust',
  disgusted: 'disgust',
  di: 'disgust',
  fear: 'fear',
  fearful: 'fear',
  fe: 'fear',
  happiness: 'happiness',
  happy: 'happiness',
  ha: 'happiness',
  sadness: 'sadness',
  sad: 'sadness',
  sa: 'sadness',
  surprise: 'surprise',
  surprised: 'surprise',
  su: 'surprise',
  neutral: 'neutral',
  ne: 'neutral',
  contempt: 'contempt',
  co: 'contempt',
};

/** Index of a class folder in the model's labels, or a message saying why it has none. */
export function labelIndex(folder: string, labels: readonly string[]): number | string {
  const label = SYNONYMS[folder.toLowerCase()];
  if (!label) return `unknown class folder '${folder}' (known: ${Object.keys(SYNONYMS).join(', ')})`;
  const i = labels.indexOf(label);
  return i >= 0 ? i : `class '${label}' is not among the model's labels (${labels.join(', ')})`;
}
