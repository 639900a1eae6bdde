import { Reader } from './onnx-metadata.js';

const GRAPH = 7; // ModelProto.graph
const NODE = 1; // GraphProto.node
const INPUT = 11; // GraphProto.input
const OUTPUT = 12; // GraphProto.output
const NODE_OUTPUT = 2; // NodeProto.output
const NAME = 1; // ValueInfoProto.name

const enc = new TextEncoder();
const dec = new TextDecoder();

function varint(n: number): number[] {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n % 0x80) | 0x80);
    n = Math.floor(n / 0x80);
  }
  out.push(n);
  return out;
}

const lenField = (field: number, payload: Uint8Array): Uint8Array => {
  const head = [...varint((field << 3) | 2), ...varint(payload.length)];
  const out = new Uint8Array(head.length + payload.length);
  out.set(head);
  out.set(payload, head.length);
  return out;
};

const concat = (parts: Uint8Array[]): Uint8Array => {
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
};

/** Every length-delimited field of one message, in order, with where it sits. */
function fields(buf: Uint8Array): Array<{ field: number; start: number; end: number; payload: Uint8Array | null }> {
  const r = new Reader(buf);
  const out: Array<{ field: number; start: number; end: number; payload: Uint8Array | null }> = [];
  while (!r.done) {
    const start = r.pos;
    const tag = r.varint();
    const wire = tag & 7;
    const payload = wire === 2 ? r.bytes() : (r.skip(wire), null);
    out.push({ field: tag >>> 3, start, end: r.pos, payload });
  }
  return out;
}

/**
 * The model with every node's output also made a graph output, so one run shows each
 * intermediate tensor (for calibration ranges). ONNX Runtime infers the types of
 * outputs declared by name only. Returns the names of the graph input(s) and of all
 * tensors now visible.
 */
export function exposeAllOutputs(model: Uint8Array): { model: Uint8Array; inputs: string[]; tensors: string[] } {
  const top = fields(model);
  const graph = top.find((f) => f.field === GRAPH && f.payload);
  if (!graph?.payload) throw new Error('not an ONNX model: no graph');
  const g = fields(graph.payload);
  const nameOf = (vi: Uint8Array): string => dec.decode(fields(vi).find((f) => f.field === NAME)?.payload ?? new Uint8Array());
  const outputs = new Set(g.filter((f) => f.field === OUTPUT && f.payload).map((f) => nameOf(f.payload!)));
  const inputs = g.filter((f) => f.field === INPUT && f.payload).map((f) => nameOf(f.payload!));
  const produced: string[] = [];
  for (const n of g.filter((f) => f.field === NODE && f.payload)) {
    for (const o of fields(n.payload!).filter((f) => f.field === NODE_OUTPUT && f.payload)) {
      const name = dec.decode(o.payload!);
      if (name) produced.push(name);
    }
  }
  const extra = produced.filter((n) => !outputs.has(n)).map((n) => lenField(OUTPUT, lenField(NAME, enc.encode(n))));
  const newGraph = lenField(GRAPH, concat([graph.payload, ...extra]));
  return {
    model: concat([model.subarray(0, graph.start), newGraph, model.subarray(graph.end)]),
    inputs,
    tensors: [...inputs, ...new Set(produced)],
  };
}
