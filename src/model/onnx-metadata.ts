/**
 * Reads an ONNX file's metadata_props. onnxruntime's JS API exposes input and output
 * shapes but not the model's own key/value metadata, and a protobuf schema dependency
 * for two fields would be heavier than walking the top-level wire format.
 */

const METADATA_PROPS = 14; // ModelProto.metadata_props: repeated StringStringEntryProto

export class Reader {
  pos = 0;
  constructor(private readonly buf: Uint8Array) {}
  get done(): boolean {
    return this.pos >= this.buf.length;
  }
  varint(): number {
    let result = 0;
    let mul = 1;
    for (let i = 0; i < 10; i++) {
      const b = this.buf[this.pos++];
      if (b === undefined) throw new Error('truncated varint');
      result += (b & 0x7f) * mul;
      if (b < 0x80) return result;
      mul *= 128;
    }
    throw new Error('varint too long');
  }
  bytes(): Uint8Array {
    const len = this.varint();
    if (this.pos + len > this.buf.length) throw new Error('truncated field');
    const out = this.buf.subarray(this.pos, this.pos + len);
    this.pos += len;
    return out;
  }
  skip(wire: number): void {
    if (wire === 0) this.varint();
    else if (wire === 1) this.pos += 8;
    else if (wire === 2) this.bytes();
    else if (wire === 5) this.pos += 4;
    else throw new Error(`unsupported wire type ${wire}`);
  }
}

const utf8 = new TextDecoder();

/** Throws on bytes that are not a protobuf message (a clear sign of a non-ONNX file). */
export function readOnnxMetadata(file: Uint8Array): Record<string, string> {
  const r = new Reader(file);
  const out: Record<string, string> = {};
  while (!r.done) {
    const tag = r.varint();
    const field = Math.floor(tag / 8);
    const wire = tag & 7;
    if (field === METADATA_PROPS && wire === 2) {
      const entry = new Reader(r.bytes());
      let key = '';
      let value = '';
      while (!entry.done) {
        const t = entry.varint();
        if (t === (1 << 3) + 2) key = utf8.decode(entry.bytes());
        else if (t === (2 << 3) + 2) value = utf8.decode(entry.bytes());
        else entry.skip(t & 7);
      }
      out[key] = value;
    } else {
      r.skip(wire);
    }
  }
  return out;
}
