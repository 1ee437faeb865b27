import { isIPv4, isIPv6 } from 'node:net';
import { XdsError } from './errors.js';

/** IP bytes (4 or 16) to text; `undefined` for any other length. IPv6 is RFC 5952 compressed. */
export function ipFromBytes(b: Uint8Array): string | undefined {
  if (b.length === 4) return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
  if (b.length !== 16) return undefined;
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((b[i]! << 8) | b[i + 1]!);
  // IPv4-mapped addresses print with a dotted tail, as Node and Rust both do.
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    return `::ffff:${b[12]}.${b[13]}.${b[14]}.${b[15]}`;
  }
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  const head = hex.slice(0, bestStart).join(':');
  const tail = hex.slice(bestStart + bestLen).join(':');
  return `${head}::${tail}`;
}

/** Text to IP bytes (4 or 16). Throws `ERR_XDS_ENCODE` for anything that is not an IP. */
export function ipToBytes(text: string): Uint8Array {
  if (isIPv4(text)) return Uint8Array.from(text.split('.').map(Number));
  if (!isIPv6(text))
    throw new XdsError('ERR_XDS_ENCODE', `not an IP address: ${JSON.stringify(text)}`);
  // Rewrite a dotted IPv4 tail as two hex groups, then expand the `::`.
  const s = text.replace(
    /(\d+)\.(\d+)\.(\d+)\.(\d+)$/,
    (_m, a, b, c, d) => `${((+a << 8) | +b).toString(16)}:${((+c << 8) | +d).toString(16)}`,
  );
  const parse = (part: string) => (part ? part.split(':').map((g) => Number.parseInt(g, 16)) : []);
  const gap = s.indexOf('::');
  let groups: number[];
  if (gap < 0) groups = parse(s);
  else {
    const l = parse(s.slice(0, gap));
    const r = parse(s.slice(gap + 2));
    groups = [...l, ...new Array<number>(8 - l.length - r.length).fill(0), ...r];
  }
  const out = new Uint8Array(16);
  groups.forEach((g, i) => {
    out[i * 2] = g >> 8;
    out[i * 2 + 1] = g & 0xff;
  });
  return out;
}

/** Longest prefix an address of `bytes` length may carry (32 or 128). */
export function maxPrefix(bytes: Uint8Array): number {
  return bytes.length === 4 ? 32 : 128;
}
