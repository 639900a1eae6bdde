/**
 * Runs @mediapipe/tasks-vision (a browser library) inside plain Node.
 *
 * With the CPU delegate every task still uploads its input image as a GL texture and
 * reads it back, so a canvas with a tiny WebGL2 is required: texture upload,
 * framebuffer attachment and readPixels are real; every other call is a no-op. The
 * wasm loader is a UMD script that the library expects to pull in with importScripts.
 */
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runInThisContext } from 'node:vm';

interface Pixels {
  width: number;
  height: number;
  data: Uint8Array | Uint8ClampedArray | null;
}

type GlFn = (...args: unknown[]) => unknown;

const GL_CONST: Record<string, number> = {
  TEXTURE_2D: 0x0de1,
  RGBA: 0x1908,
  RGB: 0x1907,
  UNSIGNED_BYTE: 0x1401,
  FLOAT: 0x1406,
  FRAMEBUFFER: 0x8d40,
  COLOR_ATTACHMENT0: 0x8ce0,
  FRAMEBUFFER_COMPLETE: 0x8cd5,
  TEXTURE0: 0x84c0,
  VERSION: 0x1f02,
  RENDERER: 0x1f01,
  MAJOR_VERSION: 0x821b,
  SHADING_LANGUAGE_VERSION: 0x8b8c,
  MAX_TEXTURE_SIZE: 0x0d33,
  TEXTURE_BINDING_2D: 0x8069,
  FRAMEBUFFER_BINDING: 0x8ca6,
};

/** A GL object handle; emscripten stores its own id in `name`. */
interface Handle {
  name?: number;
}

class FakeWebGl2 {
  private readonly textures = new Map<Handle, Pixels>();
  private readonly fbAttachment = new Map<Handle | null, Handle | null>();
  private boundTexture: Handle | null = null;
  private boundFramebuffer: Handle | null = null;

  constructor(readonly canvas: FakeCanvas) {}

  createTexture(): Handle {
    const h: Handle = {};
    this.textures.set(h, { width: 0, height: 0, data: null });
    return h;
  }
  createFramebuffer(): Handle {
    return {};
  }
  bindTexture(_target: number, tex: Handle | null): void {
    this.boundTexture = tex;
  }
  bindFramebuffer(_target: number, fb: Handle | null): void {
    this.boundFramebuffer = fb;
  }
  framebufferTexture2D(_t: number, _a: number, _tt: number, tex: Handle | null): void {
    this.fbAttachment.set(this.boundFramebuffer, tex);
  }
  deleteTexture(tex: Handle | null): void {
    if (tex) this.textures.delete(tex);
  }
  texImage2D(...args: unknown[]): void {
    const tex = this.boundTexture && this.textures.get(this.boundTexture);
    if (!tex) return;
    if (args.length === 6) {
      // (target, level, internalformat, format, type, source): the library's own upload
      const src = args[5] as Pixels;
      tex.width = src.width;
      tex.height = src.height;
      tex.data = src.data;
    } else {
      tex.width = args[3] as number;
      tex.height = args[4] as number;
      const px = args[8] as Uint8Array | null;
      tex.data = px ? new Uint8Array(px) : null;
    }
  }
  /** WebGL2 form (..., heapView, offset) as emscripten calls it, or (..., view). */
  readPixels(x: number, y: number, w: number, h: number, _f: number, _t: number, dst: Uint8Array, offset = 0): void {
    const att = this.fbAttachment.get(this.boundFramebuffer);
    const tex = att && this.textures.get(att);
    if (!tex?.data) return;
    for (let row = 0; row < h; row++) {
      const from = ((y + row) * tex.width + x) * 4;
      dst.set(tex.data.subarray(from, from + w * 4), offset + row * w * 4);
    }
  }
  getParameter(p: number): unknown {
    if (p === GL_CONST.VERSION) return 'WebGL 2.0';
    if (p === GL_CONST.SHADING_LANGUAGE_VERSION) return 'WebGL GLSL ES 3.00';
    if (p === GL_CONST.MAX_TEXTURE_SIZE) return 8192;
    if (p === GL_CONST.MAJOR_VERSION) return 3;
    if (p === GL_CONST.RENDERER) return 'arpgnet-edge readback shim';
    if (p === GL_CONST.TEXTURE_BINDING_2D) return this.boundTexture;
    if (p === GL_CONST.FRAMEBUFFER_BINDING) return this.boundFramebuffer;
    return 0;
  }
  getSupportedExtensions(): string[] {
    // an empty list makes MediaPipe's GlContext give up and destroy itself
    return ['EXT_color_buffer_float', 'OES_texture_float_linear'];
  }
  getExtension(): null {
    return null;
  }
  getContextAttributes(): Record<string, boolean> {
    return { alpha: true, antialias: false, depth: false, stencil: false };
  }
  checkFramebufferStatus(): number {
    return GL_CONST.FRAMEBUFFER_COMPLETE ?? 0;
  }
  getShaderParameter(): boolean {
    return true;
  }
  getProgramParameter(): boolean {
    return true;
  }
  getShaderInfoLog(): string {
    return '';
  }
  getProgramInfoLog(): string {
    return '';
  }
  getError(): number {
    return 0;
  }
  isContextLost(): boolean {
    return false;
  }
}

function fakeGl(canvas: FakeCanvas): FakeWebGl2 {
  const gl = new FakeWebGl2(canvas);
  const noop: GlFn = () => null;
  return new Proxy(gl, {
    get(target, prop, receiver) {
      if (typeof prop !== 'string') return Reflect.get(target, prop, receiver);
      if (prop in target) {
        const v = Reflect.get(target, prop, receiver) as unknown;
        return typeof v === 'function' ? (v as GlFn).bind(target) : v;
      }
      if (/^[A-Z0-9_]+$/.test(prop)) return GL_CONST[prop] ?? 0;
      // state emscripten keeps on the context object (e.g. currentPixelPackBufferBinding) starts unset
      if (prop.startsWith('current')) return undefined;
      // createShader/createProgram/createBuffer/... must return distinct truthy handles
      if (prop.startsWith('create')) return (): Handle => ({});
      return noop;
    },
  });
}

class FakeCanvas {
  private gl: FakeWebGl2 | null = null;
  constructor(
    public width: number,
    public height: number,
  ) {}
  getContext(kind: string): FakeWebGl2 | null {
    if (kind !== 'webgl2') return null;
    this.gl ??= fakeGl(this);
    return this.gl;
  }
  addEventListener(): void {}
  removeEventListener(): void {}
}

let installed = false;

/** Installs the browser globals the library looks for; idempotent. */
export function installMediaPipeGlobals(): void {
  if (installed) return;
  installed = true;
  const g = globalThis as Record<string, unknown>;
  g['self'] ??= globalThis;
  g['navigator'] ??= { userAgent: `Node.js/${process.versions.node}` };
  g['OffscreenCanvas'] ??= FakeCanvas;
  g['OffscreenCanvasRenderingContext2D'] ??= class {};
  // emscripten tells WebGL1 from WebGL2 with instanceof; our fake is neither class
  g['WebGLRenderingContext'] ??= class {};
  g['WebGL2RenderingContext'] ??= class {};
  // Evaluated as a CommonJS function by hand: module loaders with hooks (tsx, bundlers)
  // may rewrite a plain require() of this UMD file and lose its module.exports.
  g['importScripts'] = (url: string): void => {
    const file = url.startsWith('file:') ? fileURLToPath(url) : url;
    const code = readFileSync(file, 'utf8');
    const mod: { exports: unknown } = { exports: {} };
    const fn = runInThisContext(`(function (module, exports, require, __filename, __dirname) {${code}\n})`, { filename: file }) as (
      m: typeof mod,
      e: unknown,
      r: NodeJS.Require,
      f: string,
      d: string,
    ) => void;
    fn(mod, mod.exports, createRequire(file), file, dirname(file));
    const factory = mod.exports as (opts?: Record<string, unknown>) => Promise<unknown>;
    // The wasm binds console.log/console.error when its factory starts; its info lines would
    // land on stdout, which carries events and JSON. Hand it sinks instead: everything to
    // stderr with MEDIAPIPE_LOG set, otherwise only errors and fatal messages.
    const verbose = Boolean(process.env['MEDIAPIPE_LOG']);
    const outSink = (...a: unknown[]): void => void (verbose && process.stderr.write(`${a.join(' ')}\n`));
    const errSink = (...a: unknown[]): void => {
      const line = a.join(' ');
      if (verbose || /^[EF]\d{4}|abort/i.test(line)) process.stderr.write(`${line}\n`);
    };
    g['ModuleFactory'] = (opts: Record<string, unknown> = {}) => {
      const { log, error } = console;
      console.log = outSink;
      console.error = errSink;
      try {
        return factory(opts);
      } finally {
        console.log = log;
        console.error = error;
      }
    };
    // its debug channel calls console.warn at run time, not through a bound copy
    g['dbg'] = outSink;
  };
}

export function mediapipeWasmDir(): string {
  const require = createRequire(import.meta.url);
  return `${dirname(require.resolve('@mediapipe/tasks-vision'))}/wasm`;
}
