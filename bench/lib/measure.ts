/** Small helpers every benchmark shares: flags, percentiles, CPU time of processes, the commit measured. */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { ROOT } from '../../src/paths.js';

/** `--name value` from the command line, or the default. */
export const arg = (name: string, def: string): string => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? (process.argv[i + 1] ?? def) : def;
};

/** The p-th percentile (nearest rank); NaN for no values. */
export const pct = (v: number[], p: number): number => {
  const s = [...v].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]! : NaN;
};

const TICK = 100; // USER_HZ on Linux

/** CPU milliseconds (user + system) a process has used so far; 0 once it is gone. */
export const procCpuMs = (pid: number): number => {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return ((Number(f[11]) + Number(f[12])) * 1000) / TICK;
  } catch {
    return 0;
  }
};

/** The commit a result was measured on (this checkout, or another one's folder), for its result file. */
export const commit = (dir = ROOT): string => {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: dir, encoding: 'utf8' }).trim();
  } catch {
    return 'unknown';
  }
};

/** These processes and every process below them (decoders, mediasoup workers), from /proc. */
export function processTree(roots: number[]): number[] {
  const parent = new Map<number, number>();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const st = readFileSync(`/proc/${d}/stat`, 'utf8');
      parent.set(Number(d), Number(st.slice(st.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      // gone meanwhile
    }
  }
  const out = [...roots];
  for (let i = 0; i < out.length; i++) for (const [pid, pp] of parent) if (pp === out[i]) out.push(pid);
  return out;
}

/** UDP sockets held by these processes (socket inodes in their fds matched against /proc/net/udp). */
export function udpPorts(pids: number[]): number {
  const inodes = new Set<string>();
  for (const pid of pids) {
    try {
      for (const fd of readdirSync(`/proc/${pid}/fd`)) {
        const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
        if (m) inodes.add(m[1]!);
      }
    } catch {
      // gone meanwhile
    }
  }
  let n = 0;
  for (const file of ['/proc/net/udp', '/proc/net/udp6']) {
    try {
      for (const line of readFileSync(file, 'utf8').split('\n').slice(1)) {
        const inode = line.trim().split(/\s+/)[9];
        if (inode && inodes.has(inode)) n++;
      }
    } catch {
      // no IPv6
    }
  }
  return n;
}

/** CPU seconds of this process and of its children that have exited (getrusage; /proc's cutime and cstime). */
export function cpuSeconds(): number {
  const self = process.resourceUsage();
  const children = readFileSync('/proc/self/stat', 'utf8').split(') ')[1]!.split(' ');
  // fields 16 and 17 of /proc/<pid>/stat (cutime, cstime), in clock ticks of 1/100 s
  return (self.userCPUTime + self.systemCPUTime) / 1e6 + (Number(children[13]) + Number(children[14])) / 100;
}
