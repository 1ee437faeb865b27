import { isIPv4, isIPv6 } from 'node:net';

/**
 * A parsed address. IPv4 is a uint32 number; IPv6 is a 128-bit bigint. IPv4-mapped IPv6
 * addresses (`::ffff:a.b.c.d`) are canonicalised to IPv4, as ztunnel does for socket
 * addresses accepted on dual-stack listeners.
 */
export type ParsedIp = { v: 4; n: number } | { v: 6; n: bigint };

/** A parsed CIDR with the host bits of `net` cleared. */
export type ParsedCidr =
  | { v: 4; net: number; mask: number; prefixLength: number }
  | { v: 6; net: bigint; mask: bigint; prefixLength: number };

const MAPPED_PREFIX = 0xffffn << 32n;
const V6_ALL = (1n << 128n) - 1n;

function parseV4(text: string): number {
  const parts = text.split('.');
  let n = 0;
  for (const part of parts) n = n * 256 + Number(part);
  return n >>> 0;
}

function parseV6(text: string): bigint {
  let head = text;
  // An embedded IPv4 tail (`::ffff:1.2.3.4`) is rewritten as its two 16-bit words.
  const lastColon = head.lastIndexOf(':');
  if (head.indexOf('.', lastColon) !== -1) {
    const v4 = parseV4(head.slice(lastColon + 1));
    head = `${head.slice(0, lastColon + 1)}${(v4 >>> 16).toString(16)}:${(v4 & 0xffff).toString(16)}`;
  }
  const gap = head.indexOf('::');
  const toWords = (s: string): number[] =>
    s.length === 0 ? [] : s.split(':').map((w) => Number.parseInt(w, 16));
  let words: number[];
  if (gap === -1) {
    words = toWords(head);
  } else {
    const left = toWords(head.slice(0, gap));
    const right = toWords(head.slice(gap + 2));
    words = [...left, ...new Array<number>(8 - left.length - right.length).fill(0), ...right];
  }
  let n = 0n;
  for (const w of words) n = (n << 16n) | BigInt(w);
  return n;
}

/** Parses a textual IPv4/IPv6 address (zone ids refused); `undefined` when invalid. */
export function parseIp(text: string): ParsedIp | undefined {
  if (typeof text !== 'string') return undefined;
  if (isIPv4(text)) return { v: 4, n: parseV4(text) };
  if (!isIPv6(text) || text.includes('%')) return undefined;
  const n = parseV6(text);
  if (n >> 32n === 0xffffn) return { v: 4, n: Number(n & 0xffffffffn) };
  return { v: 6, n };
}

/**
 * Builds a CIDR from an address and prefix length; `undefined` when either is invalid.
 * An IPv4-mapped IPv6 network with a prefix of at least 96 becomes the equivalent IPv4
 * network, so `::ffff:10.0.0.0/104` and `10.0.0.0/8` match the same peers.
 */
export function makeCidr(address: string, prefixLength: number): ParsedCidr | undefined {
  if (!Number.isInteger(prefixLength) || prefixLength < 0) return undefined;
  if (isIPv4(address)) {
    if (prefixLength > 32) return undefined;
    const mask = prefixLength === 0 ? 0 : (0xffffffff << (32 - prefixLength)) >>> 0;
    return { v: 4, net: (parseV4(address) & mask) >>> 0, mask, prefixLength };
  }
  if (!isIPv6(address) || address.includes('%') || prefixLength > 128) return undefined;
  const n = parseV6(address);
  if (prefixLength >= 96 && (n >> 32n) << 32n === MAPPED_PREFIX) {
    return makeCidr(v4Text(Number(n & 0xffffffffn)), prefixLength - 96);
  }
  const mask = prefixLength === 0 ? 0n : (V6_ALL << BigInt(128 - prefixLength)) & V6_ALL;
  return { v: 6, net: n & mask, mask, prefixLength };
}

/** Parses `addr/len` or a bare address (a host CIDR); `undefined` when invalid. */
export function parseCidr(text: string): ParsedCidr | undefined {
  if (typeof text !== 'string') return undefined;
  const slash = text.indexOf('/');
  if (slash === -1) return makeCidr(text, isIPv4(text) ? 32 : 128);
  const len = text.slice(slash + 1);
  if (!/^\d{1,3}$/.test(len)) return undefined;
  return makeCidr(text.slice(0, slash), Number(len));
}

export function cidrContains(cidr: ParsedCidr, ip: ParsedIp): boolean {
  if (cidr.v === 4) return ip.v === 4 && (ip.n & cidr.mask) >>> 0 === cidr.net;
  return ip.v === 6 && (ip.n & cidr.mask) === cidr.net;
}

function v4Text(n: number): string {
  return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}
