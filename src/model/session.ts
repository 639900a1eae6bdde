import ort from 'onnxruntime-node';
import type { Logger } from '../log.js';

export type Provider = 'tensorrt' | 'cuda' | 'cpu';

export interface TensorRtOptions {
  fp16: boolean;
  engineCachePath?: string | undefined;
  workspaceMb?: number | undefined;
  /** INT8 with this calibration table (made by the training side from aligned faces). */
  int8CalibrationTable?: string | undefined;
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

/**
 * The provider entry handed to onnxruntime. Stock onnxruntime-node 1.30 forwards only
 * deviceId to TensorRT and ignores the trt_* keys; the TensorRT EP also reads the
 * ORT_TENSORRT_* variables set here (before its library loads). The Jetson build's
 * binding patch (deploy/jetson/patches) passes the trt_* keys through.
 */
export function providerEntry(p: Provider, o: SessionOptions): ort.InferenceSession.ExecutionProviderConfig {
  if (p !== 'tensorrt' || !o.tensorrt) return p;
  const t = o.tensorrt;
  const trt: Record<string, string> = { trt_fp16_enable: t.fp16 ? '1' : '0' };
  process.env['ORT_TENSORRT_FP16_ENABLE'] = trt['trt_fp16_enable']!;
  if (t.engineCachePath) {
    trt['trt_engine_cache_enable'] = '1';
    trt['trt_engine_cache_path'] = t.engineCachePath;
    process.env['ORT_TENSORRT_ENGINE_CACHE_ENABLE'] = '1';
    process.env['ORT_TENSORRT_CACHE_PATH'] = t.engineCachePath;
  }
  if (t.workspaceMb) {
    trt['trt_max_workspace_size'] = String(t.workspaceMb * 1024 * 1024);
    process.env['ORT_TENSORRT_MAX_WORKSPACE_SIZE'] = trt['trt_max_workspace_size']!;
  }
  if (t.int8CalibrationTable) {
    trt['trt_int8_enable'] = '1';
    trt['trt_int8_calibration_table_name'] = t.int8CalibrationTable;
    // `models calibrate` writes TensorRT's own cache format
    trt['trt_int8_use_native_calibration_table'] = '1';
    process.env['ORT_TENSORRT_INT8_ENABLE'] = '1';
    process.env['ORT_TENSORRT_INT8_CALIBRATION_TABLE_NAME'] = t.int8CalibrationTable;
    process.env['ORT_TENSORRT_INT8_USE_NATIVE_CALIBRATION_TABLE'] = '1';
  }
  return { name: 'tensorrt', deviceId: 0, ...trt } as ort.InferenceSession.ExecutionProviderConfig;
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
        // idle intra-op threads would spin on the cores MediaPipe and the decoders need
        extra: { session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } },
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
