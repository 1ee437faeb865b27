import { BlockList } from 'node:net';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { cidrContains, makeCidr, parseCidr, parseIp } from '../src/ip.js';

const v4 = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((p) => p.join('.'));
// Full and `::`-compressed IPv6 spellings (the compressed one is a different address: words
// 2-4 become zero; both tools read the same string).
const v6 = fc
  .array(fc.nat(0xffff), { minLength: 8, maxLength: 8 })
  .chain((words) =>
    fc.constantFrom(
      words.map((w) => w.toString(16)).join(':'),
      `${words
        .slice(0, 2)
        .map((w) => w.toString(16))
        .join(':')}::${words
        .slice(5)
        .map((w) => w.toString(16))
        .join(':')}`,
    ),
  )
  .filter((a) => parseIp(a)?.v === 6);

describe('IP and CIDR parsing, checked against node:net BlockList', () => {
  it('IPv4 CIDR containment agrees with BlockList', () => {
    fc.assert(
      fc.property(v4, fc.nat(32), v4, (net, len, ip) => {
        const list = new BlockList();
        list.addSubnet(net, len, 'ipv4');
        expect(cidrContains(makeCidr(net, len)!, parseIp(ip)!)).toBe(list.check(ip, 'ipv4'));
      }),
      { numRuns: 2000 },
    );
  });

  it('IPv6 CIDR containment agrees with BlockList', () => {
    fc.assert(
      fc.property(v6, fc.nat(128), v6, (net, len, ip) => {
        const list = new BlockList();
        list.addSubnet(net, len, 'ipv6');
        expect(cidrContains(makeCidr(net, len)!, parseIp(ip)!)).toBe(list.check(ip, 'ipv6'));
      }),
      { numRuns: 2000 },
    );
  });

  it('a network contains addresses that share its prefix (IPv6 near misses)', () => {
    fc.assert(
      fc.property(v6, fc.integer({ min: 1, max: 128 }), (net, len) => {
        const list = new BlockList();
        list.addSubnet(net, len, 'ipv6');
        expect(cidrContains(makeCidr(net, len)!, parseIp(net)!)).toBe(true);
        expect(list.check(net, 'ipv6')).toBe(true);
      }),
      { numRuns: 500 },
    );
  });

  it('parses the usual IPv6 spellings to the same value', () => {
    const forms = [
      '2001:db8::1',
      '2001:0db8:0000:0000:0000:0000:0000:0001',
      '2001:db8:0:0:0:0:0:1',
    ];
    expect(new Set(forms.map((f) => String(parseIp(f)?.n))).size).toBe(1);
    expect(parseIp('::')).toEqual({ v: 6, n: 0n });
    expect(parseIp('1::')).toEqual({ v: 6, n: 1n << 112n });
    expect(parseIp('::1.2.3.4')).toEqual({ v: 6, n: 0x01020304n });
  });

  it('canonicalises IPv4-mapped addresses and networks to IPv4', () => {
    expect(parseIp('::ffff:10.1.2.3')).toEqual(parseIp('10.1.2.3'));
    expect(parseIp('::ffff:a01:203')).toEqual(parseIp('10.1.2.3'));
    expect(makeCidr('::ffff:10.0.0.0', 104)).toEqual(makeCidr('10.0.0.0', 8));
    // Below /96 the network is not a mapped range; it stays IPv6 and holds no IPv4 peer.
    expect(cidrContains(makeCidr('::', 0)!, parseIp('10.0.0.1')!)).toBe(false);
  });

  it('refuses what is not an address or a CIDR', () => {
    for (const bad of [
      '',
      '1.2.3',
      '1.2.3.4.5',
      '256.1.1.1',
      '01.2.3.4',
      'fe80::1%eth0',
      ':::1',
      'x',
    ]) {
      expect(parseIp(bad), bad).toBeUndefined();
    }
    for (const bad of [
      '10.0.0.0/33',
      'fd00::/129',
      '10.0.0.0/-1',
      '10.0.0.0/',
      '10.0.0.0/8/8',
      '/8',
      '10.0.0.0/1e1',
    ]) {
      expect(parseCidr(bad), bad).toBeUndefined();
    }
    expect(makeCidr('10.0.0.0', 8.5)).toBeUndefined();
  });
});
