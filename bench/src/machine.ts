/** What the figures were measured on, recorded in every result file. */

import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { parseStunnelVersion } from './lib/stunnel.js';

export interface MachineInfo {
  cpuModel: string;
  /** Logical CPUs available to this process. */
  cores: number;
  memoryGiB: number;
  kernel: string;
  arch: string;
  node: string;
  /** OpenSSL bundled with Node (what Node TLS uses). */
  nodeOpenssl: string;
  nghttp2?: string;
  /** `openssl version` of the CLI (what stunnel4 links against may differ; see `stunnel`). */
  opensslCli?: string;
  stunnel?: string;
  /** The OpenSSL stunnel4 runs with. */
  stunnelOpenssl?: string;
  iperf3?: string;
  /** 1/5/15-minute load average when the run started (others share this machine). */
  loadAverage: number[];
  root: boolean;
  commit?: string;
}

/** stdout+stderr of a command (stunnel4 -version prints to stderr), undefined if missing. */
function output(command: string, args: string[]): string | undefined {
  const r = spawnSync(command, args, {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: 5000,
  });
  if (r.error) return undefined;
  return `${r.stdout ?? ''}${r.stderr ?? ''}` || undefined;
}

function cpuModel(): string {
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    if (m) return m[1]!.trim();
  } catch {}
  return os.cpus()[0]?.model ?? 'unknown';
}

/** Collect machine and tool versions (each external tool is optional). */
export function machineInfo(cwd?: string): MachineInfo {
  const stunnelOut = output('stunnel4', ['-version']) ?? output('stunnel', ['-version']);
  const git = (...args: string[]) => output('git', ['-C', cwd ?? process.cwd(), ...args])?.trim();
  const commit = git('rev-parse', '--short', 'HEAD');
  const dirty = git('status', '--porcelain', '--untracked-files=no');
  return {
    cpuModel: cpuModel(),
    cores: os.availableParallelism(),
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    kernel: `${os.type()} ${os.release()}`,
    arch: os.arch(),
    node: process.version,
    nodeOpenssl: process.versions.openssl,
    nghttp2: process.versions.nghttp2,
    opensslCli: output('openssl', ['version'])?.trim(),
    stunnel: stunnelOut ? parseStunnelVersion(stunnelOut) : undefined,
    stunnelOpenssl: stunnelOut
      ? /Running\s+with (OpenSSL [^\n]+)/.exec(stunnelOut)?.[1]?.trim()
      : undefined,
    iperf3: output('iperf3', ['--version'])?.split('\n')[0]?.trim(),
    loadAverage: os.loadavg().map((x) => Math.round(x * 100) / 100),
    root: process.getuid?.() === 0,
    commit:
      commit && /^[0-9a-f]+$/.test(commit)
        ? `${commit}${dirty ? ' (uncommitted changes)' : ''}`
        : undefined,
  };
}
