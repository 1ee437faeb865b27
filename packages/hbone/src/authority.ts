import { isIPv4, isIPv6 } from 'node:net';
import { HboneError } from './errors.js';

/** A CONNECT `:authority` split into its parts. */
export interface Authority {
  /** IP literal without brackets, or a DNS hostname (lowercased). */
  readonly host: string;
  readonly port: number;
  /** 4 or 6 for IP literals, 0 for hostnames. */
  readonly family: 0 | 4 | 6;
}

const HOSTNAME =
  /^(?=.{1,253}$)(?:[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?)(?:\.[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?)*\.?$/;

function parsePort(text: string): number | undefined {
  if (!/^[0-9]{1,5}$/.test(text)) return undefined;
  const port = Number(text);
  return port >= 1 && port <= 65535 ? port : undefined;
}

/**
 * Parses an HBONE `:authority` as ztunnel does: `ip:port`, `[ipv6]:port`, else `host:port`.
 * Returns `undefined` for anything else (the server answers 400).
 */
export function tryParseAuthority(text: string): Authority | undefined {
  if (typeof text !== 'string' || text.length === 0 || text.length > 261) return undefined;
  if (text.startsWith('[')) {
    const close = text.indexOf(']');
    if (close < 0 || text[close + 1] !== ':') return undefined;
    const host = text.slice(1, close);
    const port = parsePort(text.slice(close + 2));
    if (!isIPv6(host) || port === undefined) return undefined;
    return { host, port, family: 6 };
  }
  const colon = text.lastIndexOf(':');
  if (colon <= 0) return undefined;
  const host = text.slice(0, colon);
  const port = parsePort(text.slice(colon + 1));
  if (port === undefined) return undefined;
  if (isIPv4(host)) return { host, port, family: 4 };
  const lower = host.toLowerCase();
  if (!HOSTNAME.test(lower) || /^[0-9.]+$/.test(lower)) return undefined;
  return { host: lower, port, family: 0 };
}

/** Like {@link tryParseAuthority} but throws `ERR_HBONE_AUTHORITY_INVALID`. */
export function parseAuthority(text: string): Authority {
  const authority = tryParseAuthority(text);
  if (!authority) {
    throw new HboneError(
      'ERR_HBONE_AUTHORITY_INVALID',
      `invalid HBONE authority ${JSON.stringify(String(text).slice(0, 300))}: expected ip:port, [ipv6]:port or host:port`,
    );
  }
  return authority;
}

/** Renders host and port as an authority, bracketing IPv6 literals. */
export function formatAuthority(host: string, port: number): string {
  return isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`;
}

/** Accepts a string authority or `{host, port}` and returns the validated wire string. */
export function normalizeAuthority(value: string | { host: string; port: number }): string {
  if (typeof value === 'string') {
    parseAuthority(value);
    return value;
  }
  const text = formatAuthority(value.host, value.port);
  parseAuthority(text);
  return text;
}
