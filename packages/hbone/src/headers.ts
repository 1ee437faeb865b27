import { randomBytes } from 'node:crypto';
import { formatAuthority } from './authority.js';

/** A fresh W3C `traceparent` as ztunnel sends per tunnel: random ids, flags `00` (not sampled). */
export function newTraceparent(): string {
  const bytes = randomBytes(24);
  return `00-${bytes.toString('hex', 0, 16)}-${bytes.toString('hex', 16, 24)}-00`;
}

/**
 * The `forwarded` header ztunnel sends: `for="<ip:port>"`, plus `;host=<fqdn>` when the
 * connection was addressed to a service.
 */
export function formatForwarded(client: { address: string; port: number }, host?: string): string {
  const value = `for="${formatAuthority(client.address, client.port)}"`;
  return host ? `${value};host=${host}` : value;
}

/** Parses a `forwarded` header's first element into its `for` and `host` parameters. */
export function parseForwarded(value: string | undefined): { for?: string; host?: string } {
  const out: { for?: string; host?: string } = {};
  if (!value) return out;
  const first = value.split(',')[0] ?? '';
  for (const part of first.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    const key = part.slice(0, eq).trim().toLowerCase();
    let v = part.slice(eq + 1).trim();
    if (v.startsWith('"') && v.endsWith('"') && v.length >= 2) v = v.slice(1, -1);
    if (key === 'for') out.for = v;
    else if (key === 'host') out.host = v;
  }
  return out;
}

/** Parses a W3C `baggage` header into key/value pairs (properties after `;` are dropped). */
export function parseBaggage(value: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (!value) return out;
  for (const member of value.split(',')) {
    const kv = member.split(';')[0] ?? '';
    const eq = kv.indexOf('=');
    if (eq <= 0) continue;
    const key = kv.slice(0, eq).trim();
    const raw = kv.slice(eq + 1).trim();
    try {
      out[key] = decodeURIComponent(raw);
    } catch {
      out[key] = raw;
    }
  }
  return out;
}

/** Renders baggage pairs as ztunnel does (comma list, empty values omitted). */
export function formatBaggage(pairs: Record<string, string | undefined>): string {
  return Object.entries(pairs)
    .filter((e): e is [string, string] => typeof e[1] === 'string' && e[1].length > 0)
    .map(([k, v]) => `${k}=${encodeURIComponent(v)}`)
    .join(',');
}
