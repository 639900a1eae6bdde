import { z } from 'zod';

const point = z.tuple([z.number(), z.number()]);

/** The preprocessing contract (models/preprocess.json), as embedded in every exported model. */
export const Preprocess = z.object({
  version: z.literal(1),
  inputSize: z.object({ width: z.number().int().positive(), height: z.number().int().positive() }),
  colour: z.enum(['grey', 'rgb']),
  lumaWeights: z.tuple([z.number(), z.number(), z.number()]),
  mean: z.number(),
  std: z.number().positive(),
  interpolation: z.literal('bilinear'),
  border: z.literal('replicate'),
  template: z.array(point).length(5),
  templatePoints: z.array(z.string()).length(5),
  /** A still image becomes a clip of these views: [rotation degrees, scale, dx, dy] about the input centre. */
  stillViews: z.object({ views: z.array(z.tuple([z.number(), z.number(), z.number(), z.number()])).min(1) }).optional(),
});
export type Preprocess = z.infer<typeof Preprocess>;

const json = <T extends z.ZodType>(schema: T) =>
  z
    .string()
    .transform((s, ctx) => {
      try {
        return JSON.parse(s) as unknown;
      } catch {
        ctx.addIssue({ code: 'custom', message: 'not JSON' });
        return z.NEVER;
      }
    })
    .pipe(schema);

const int = z
  .string()
  .regex(/^-?\d+$/)
  .transform(Number);

export const ModelMetadata = z.object({
  'arpgnet.kind': z.enum(['encoder', 'head']),
  'arpgnet.name': z.string(),
  'arpgnet.version': z.string(),
  'arpgnet.preset': z.string(),
  'arpgnet.labels': json(z.array(z.string()).min(2)),
  'arpgnet.window': int,
  'arpgnet.trs': int,
  'arpgnet.app_dim': int,
  'arpgnet.rel_dim': int,
  'arpgnet.mode': z.string(),
  'arpgnet.flip_average': z.enum(['true', 'false']),
  'arpgnet.preprocess': json(Preprocess),
  'arpgnet.training_data': z.string(),
  'arpgnet.pair': z.string(),
  /** How a quantised encoder was made from its float graph (training/arpgnet/quantize.py); absent on a float graph. */
  'arpgnet.quantization': z.string().optional(),
});
export type ModelMetadata = z.infer<typeof ModelMetadata>;

export function parseMetadata(raw: Record<string, string>, file: string): ModelMetadata {
  const r = ModelMetadata.safeParse(raw);
  if (!r.success) {
    const why = r.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
    throw new Error(`${file} is not an ARPGNet model export (metadata: ${why})`);
  }
  return r.data;
}
