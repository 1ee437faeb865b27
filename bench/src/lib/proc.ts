/**
 * Resource use of a process, read from Linux `/proc` (no dependencies, works for any child:
 * Node, stunnel4, iperf3).
 */

import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';

let clockTicks: number | undefined;

/** `sysconf(_SC_CLK_TCK)`, the unit of utime/stime in `/proc/<pid>/stat` (100 on Linux). */
export function clockTicksPerSecond(): number {
  if (clockTicks === undefined) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

export interface ProcessSample {
  pid: number;
  /** User + system CPU time consumed so far, seconds (threads included, children not). */
  cpuSeconds: number;
  /** Resident set size now, bytes (`VmRSS`). */
  rssBytes: number;
  /** Peak resident set size, bytes (`VmHWM`); reset with {@link resetPeakRss}. */
  peakRssBytes: number;
  /** Thread count, useful for thread-per-connection proxies such as stunnel4. */
  threads: number;
}

/**
 * Parse the `/proc/<pid>/stat` line: utime and stime are fields 14 and 15, counted after the
 * `comm` field, which is parenthesised and may itself contain spaces or parentheses.
 */
export function parseStatCpuTicks(stat: string): number {
  const close = stat.lastIndexOf(')');
  const fields = stat.slice(close + 2).split(' ');
  // fields[0] is field 3 (state); utime = field 14 → index 11, stime = field 15 → index 12.
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) {
    throw new Error(`unexpected /proc stat line: ${stat.slice(0, 80)}`);
  }
  return utime + stime;
}

/** Read a `kB` field such as `VmHWM:	  1234 kB` from `/proc/<pid>/status`, as bytes. */
export function parseStatusKb(status: string, field: string): number {
  const m = new RegExp(`^${field}:\\s+(\\d+)\\s*kB`, 'm').exec(status);
  return m ? Number(m[1]) * 1024 : Number.NaN;
}

/** Sample CPU time and memory of `pid` now. Throws (ENOENT) when the process is gone. */
export function sampleProcess(pid: number): ProcessSample {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const threads = /^Threads:\s+(\d+)/m.exec(status);
  return {
    pid,
    cpuSeconds: parseStatCpuTicks(stat) / clockTicksPerSecond(),
    rssBytes: parseStatusKb(status, 'VmRSS'),
    peakRssBytes: parseStatusKb(status, 'VmHWM'),
    threads: threads ? Number(threads[1]) : Number.NaN,
  };
}

/**
 * Reset the peak-RSS mark (`VmHWM`) of a process by writing `5` to `/proc/<pid>/clear_refs`
 * (Linux ≥ 4.0; needs the same user or root). Returns false when the kernel refused, in which
 * case `VmHWM` keeps counting from process start.
 */
export function resetPeakRss(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

/** CPU and peak memory of a process over an interval: `start()` then `stop()`. */
export class ProcessMeter {
  readonly #pid: number;
  #start: ProcessSample | undefined;

  constructor(pid: number) {
    this.#pid = pid;
  }

  /** Take the starting sample and reset the peak-RSS mark. */
  start(): void {
    resetPeakRss(this.#pid);
    this.#start = sampleProcess(this.#pid);
  }

  /** CPU seconds used since `start()`, and the peak/current RSS at the end. */
  stop(): { cpuSeconds: number; peakRssBytes: number; rssBytes: number; threads: number } {
    if (!this.#start) throw new Error('ProcessMeter.stop() before start()');
    const end = sampleProcess(this.#pid);
    return {
      cpuSeconds: end.cpuSeconds - this.#start.cpuSeconds,
      peakRssBytes: end.peakRssBytes,
      rssBytes: end.rssBytes,
      threads: end.threads,
    };
  }
}
