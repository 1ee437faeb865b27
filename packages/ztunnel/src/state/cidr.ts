import { isIP } from 'node:net';

function toBigInt(ip: string): bigint | undefined {
  const fam = isIP(ip);
  if (fam === 4) return ip.split('.').reduce((n, o) => (n << 8n) | BigInt(Number(o)), 0n);
  if (fam !== 6) return undefined;
  let text = ip;
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    const n = toBigInt(v4[1]!)!;
    text = `${text.slice(0, -v4[1]!.length)}${(n >> 16n).toString(16)}:${(n & 0xffffn).toString(16)}`;
  }
  const [head, tail] = text.split('::') as [string, string | undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  return groups.reduce((n, g) => (n << 16n) | BigInt(Number.parseInt(g, 16)), 0n);
}

/** Whether `ip` lies in `network/prefixLength` (same address family only). */
export function cidrContains(network: string, prefixLength: number, ip: string): boolean {
  const bits = isIP(network) === 4 ? 32 : 128;
  if (isIP(network) !== isIP(ip)) return false;
  const a = toBigInt(network);
  const b = toBigInt(ip);
  if (a === undefined || b === undefined) return false;
  const shift = BigInt(bits - prefixLength);
  return a >> shift === b >> shift;
}
