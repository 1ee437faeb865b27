import { isIP } from 'node:net';

/** A value parser: returns the parsed value, or a string describing why the text is invalid. */
export type Parser<T> = (text: string) => T | { invalid: string };

export function isInvalid(v: unknown): v is { invalid: string } {
  return typeof v === 'object' && v !== null && 'invalid' in v && Object.keys(v).length === 1;
}

const DURATION_UNITS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

/** Go/Rust-style duration (`500ms`, `5s`, `1h30m`, `24h`) in milliseconds; a bare number is seconds. */
export const duration: Parser<number> = (text) => {
  const t = text.trim();
  if (/^\d+(\.\d+)?$/.test(t)) return Math.round(Number(t) * 1000);
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/gy;
  let total = 0;
  let consumed = 0;
  for (let m = re.exec(t); m !== null; m = re.exec(t)) {
    total += Number(m[1]) * DURATION_UNITS[m[2]!]!;
    consumed = re.lastIndex;
  }
  if (t === '' || consumed !== t.length) {
    return { invalid: `"${text}" is not a duration (examples: 500ms, 5s, 5m, 24h, 1h30m)` };
  }
  return Math.round(total);
};

/** Non-negative integer, optionally with a binary (`Ki`, `Mi`, `Gi`) or decimal (`K`, `M`, `G`) suffix. */
export const bytes: Parser<number> = (text) => {
  const m = /^(\d+)\s*(Ki|Mi|Gi|K|M|G)?$/.exec(text.trim());
  const mult: Record<string, number> = {
    Ki: 1024,
    Mi: 1024 ** 2,
    Gi: 1024 ** 3,
    K: 1e3,
    M: 1e6,
    G: 1e9,
  };
  if (!m) return { invalid: `"${text}" is not a byte size (examples: 1048576, 4Mi)` };
  const n = Number(m[1]) * (m[2] ? mult[m[2]]! : 1);
  if (!Number.isSafeInteger(n) || n > 0xffff_ffff) return { invalid: `"${text}" is too large` };
  return n;
};

export function integer(min: number, max: number): Parser<number> {
  return (text) => {
    const t = text.trim();
    const n = /^0x[0-9a-f]+$/i.test(t)
      ? Number.parseInt(t, 16)
      : /^-?\d+$/.test(t)
        ? Number(t)
        : Number.NaN;
    if (!Number.isSafeInteger(n)) return { invalid: `"${text}" is not an integer` };
    if (n < min || n > max) return { invalid: `${n} is outside ${min}..${max}` };
    return n;
  };
}

export const boolean: Parser<boolean> = (text) => {
  const t = text.trim().toLowerCase();
  if (['true', '1', 'yes', 'on'].includes(t)) return true;
  if (['false', '0', 'no', 'off'].includes(t)) return false;
  return { invalid: `"${text}" is not a boolean (true or false)` };
};

export function oneOf<const T extends string>(choices: readonly T[]): Parser<T> {
  return (text) => {
    const t = text.trim();
    const hit = choices.find((c) => c.toLowerCase() === t.toLowerCase());
    return hit ?? { invalid: `"${text}" is not one of ${choices.join(', ')}` };
  };
}

export const text: Parser<string> = (t) => t;

/** A listener address `host:port`, `[v6]:port` or `:port` (all interfaces). Port 0 picks a free port. */
export interface BindAddress {
  host: string;
  port: number;
}

export const bindAddress: Parser<BindAddress> = (raw) => {
  const t = raw.trim();
  const m = /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(t);
  if (!m)
    return { invalid: `"${raw}" is not an address of the form host:port, [ipv6]:port or :port` };
  const host = m[1] ?? m[2] ?? '';
  const port = Number(m[3]);
  if (port > 65535) return { invalid: `port ${port} is outside 0..65535` };
  if (host !== '' && host !== 'localhost' && isIP(host) === 0) {
    return { invalid: `"${host}" in "${raw}" is not an IP address` };
  }
  return { host, port };
};

export function formatBindAddress(a: BindAddress): string {
  return a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}

/** `namespace/name/serviceaccount`, the PROXY_WORKLOAD_INFO format. */
export interface WorkloadInfo {
  namespace: string;
  name: string;
  serviceAccount: string;
}

export const workloadInfo: Parser<WorkloadInfo> = (raw) => {
  const parts = raw.trim().split('/');
  if (parts.length !== 3 || parts.some((p) => p === '')) {
    return { invalid: `"${raw}" is not of the form namespace/name/serviceaccount` };
  }
  return { namespace: parts[0]!, name: parts[1]!, serviceAccount: parts[2]! };
};
