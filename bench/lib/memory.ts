import { readFileSync } from 'node:fs';

/**
 * A process's resident memory by kind, read from /proc/PID/smaps, in MB: where RSS grows
 * while V8's heaps stay flat, this says which allocator holds it.
 * - brk: glibc's main arena (the main thread's malloc)
 * - arenas: glibc's per-thread arenas (worker threads, onnxruntime and libuv threads)
 * - wasm: reservations of 1 GiB or more (V8 reserves wasm memories with guard regions)
 * - anon: other anonymous mappings (V8's heaps, large mmap'd allocations, stacks of threads)
 * - files: mapped files (libraries, models)
 */
export interface NativeMemory {
  brk: number;
  arenas: number;
  wasm: number;
  anon: number;
  files: number;
}

interface Mapping {
  start: bigint;
  end: bigint;
  perm: string;
  name: string;
  rssKb: number;
}

const ARENA = 64n << 20n; // glibc's HEAP_MAX_SIZE on 64-bit: thread arenas are reserved 64 MiB at a time, aligned
const HUGE = 1n << 30n;

function mappings(pid: number): Mapping[] {
  const out: Mapping[] = [];
  let cur: Mapping | null = null;
  for (const line of readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    const m = /^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \d+\s*(.*)$/.exec(line);
    if (m) {
      cur = { start: BigInt(`0x${m[1]!}`), end: BigInt(`0x${m[2]!}`), perm: m[3]!, name: m[4]!, rssKb: 0 };
      out.push(cur);
      continue;
    }
    const r = /^Rss:\s+(\d+) kB/.exec(line);
    if (r && cur) cur.rssKb = Number(r[1]);
  }
  return out;
}

export function nativeMemory(pid: number): NativeMemory {
  const kb: NativeMemory = { brk: 0, arenas: 0, wasm: 0, anon: 0, files: 0 };
  const maps = mappings(pid);
  for (let i = 0; i < maps.length; i++) {
    const m = maps[i]!;
    const next = maps[i + 1];
    let kind: keyof NativeMemory;
    if (m.name === '[heap]') kind = 'brk';
    else if (m.name.startsWith('/')) kind = 'files';
    else if (m.name) kind = 'anon';
    else {
      // an arena is its used part plus the PROT_NONE rest of its 64 MiB reservation
      const rest = next && next.start === m.end && next.perm === '---p' && !next.name ? next.end - next.start : 0n;
      if (m.start % ARENA === 0n && m.end - m.start + rest === ARENA) kind = 'arenas';
      else if (m.end - m.start >= HUGE || rest >= HUGE) kind = 'wasm';
      else kind = 'anon';
    }
    kb[kind] += m.rssKb;
  }
  const mb = (k: number): number => Math.round((k / 1024) * 10) / 10;
  return { brk: mb(kb.brk), arenas: mb(kb.arenas), wasm: mb(kb.wasm), anon: mb(kb.anon), files: mb(kb.files) };
}
