import ort from 'onnxruntime-node';
import type { Logger } from '../log.js';

export type Provider = 'tensorrt' | 'cuda' | 'cpu';

export interface TensorRtOptions {
  fp16: boolean;
  engineCachePath?: string | undefined;
  workspaceMb?: number | undefined;
}

export interface SessionOptions {
  providers: Provider[];
  intraOpThreads: number;
  tensorrt?: TensorRtOptions | undefined;
}

export interface OpenedSession {
  session: ort.InferenceSession;
  provider: Provider;
  /** Providers tried before the one that worked, with the reason each failed. */
  skipped: Array<{ provider: Provider; reason: string }>;
}

function providerEntry(p: Provider, o: SessionOptions): ort.InferenceSession.ExecutionProviderConfig {
  if (p === 'tensorrt' && o.tensorrt) {
    // onnxruntime-node 1.30 forwards only deviceId to TensorRT; the EP reads the rest from
    // these variables, which must be set before the provider library loads.
    process.env['ORT_TENSORRT_FP16_ENABLE'] = o.tensorrt.fp16 ? '1' : '0';
    if (o.tensorrt.engineCachePath) {
      process.env['ORT_TENSORRT_ENGINE_CACHE_ENABLE'] = '1';
      process.env['ORT_TENSORRT_CACHE_PATH'] = o.tensorrt.engineCachePath;
    }
    if (o.tensorrt.workspaceMb) {
      process.env['ORT_TENSORRT_MAX_WORKSPACE_SIZE'] = String(o.tensorrt.workspaceMb * 1024 * 1024);
    }
    return { name: 'tensorrt', deviceId: 0 } as ort.InferenceSession.ExecutionProviderConfig;
  }
  return p;
}

/** Tries the providers in order, one at a time, so a missing GPU library falls through to the next. */
let quietened = false;

export async function openSession(model: Uint8Array, what: string, o: SessionOptions, log: Logger): Promise<OpenedSession> {
  const skipped: OpenedSession['skipped'] = [];
  if (!quietened) {
    // ORT's own logger prints a provider library it cannot load as an error; that miss is
    // expected on machines without GPUs and reported once by us with the reason
    ort.env.logLevel = 'fatal';
    quietened = true;
  }
  for (const provider of o.providers) {
    try {
      const session = await ort.InferenceSession.create(model, {
        executionProviders: [providerEntry(provider, o)],
        intraOpNumThreads: o.intraOpThreads,
        interOpNumThreads: 1,
        graphOptimizationLevel: 'all',
      });
      if (skipped.length) log.warn({ model: what, provider, skipped }, 'execution provider fell back');
      else log.info({ model: what, provider }, 'execution provider');
      return { session, provider, skipped };
    } catch (e) {
      skipped.push({ provider, reason: (e as Error).message.split('\n')[0] ?? String(e) });
    }
  }
  throw new Error(`${what}: no execution provider could open the model: ${skipped.map((s) => `${s.provider}: ${s.reason}`).join('; ')}`);
}
