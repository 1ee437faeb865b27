import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DEFAULT_RULE_OPTIONS,
  dedicatedIptablesRules,
  dedicatedNftRules,
  inpodIptablesRules,
  inpodNftRules,
  policyRouting,
  removeNftRules,
} from '../src/index.js';
import { createLab, type Lab } from '../src/testing/index.js';
import { ns, reportSkip } from './helpers.js';

const rulesOf = (text: string, table: string) => {
  const section = text.split(`*${table}\n`)[1]?.split('COMMIT')[0] ?? '';
  return section.split('\n').filter((l) => l.startsWith('-A'));
};

describe('in-pod iptables rules (spec §8.4)', () => {
  const { ipv4, ipv6 } = inpodIptablesRules();

  it('declares ISTIO_PRERT and ISTIO_OUTPUT in mangle, nat and raw and jumps to them from the built-in chains', () => {
    for (const table of ['mangle', 'nat', 'raw']) {
      expect(ipv4).toContain(
        `*${table}\n:ISTIO_PRERT - [0:0]\n:ISTIO_OUTPUT - [0:0]\n-A PREROUTING -j ISTIO_PRERT\n-A OUTPUT -j ISTIO_OUTPUT\n`,
      );
    }
    expect(ipv4.match(/^COMMIT$/gm)).toHaveLength(3);
  });

  it('connmarks the proxy mark 0x539 as 0x111 on the way in and restores it on the way out', () => {
    expect(rulesOf(ipv4, 'mangle').slice(2)).toEqual([
      '-A ISTIO_PRERT -m mark --mark 0x539/0xfff -j CONNMARK --set-xmark 0x111/0xfff',
      '-A ISTIO_OUTPUT -m connmark --mark 0x111/0xfff -j CONNMARK --restore-mark --nfmask 0xffffffff --ctmask 0xffffffff',
    ]);
  });

  it('orders the nat rules as the spec table: probe bypass, 15006 inbound, DNS, 0x111 replies, lo, 15001 outbound', () => {
    expect(rulesOf(ipv4, 'nat').slice(2)).toEqual([
      '-A ISTIO_PRERT -s 169.254.7.127/32 -p tcp -j ACCEPT',
      '-A ISTIO_OUTPUT -d 169.254.7.127/32 -p tcp -j ACCEPT',
      '-A ISTIO_PRERT ! -d 127.0.0.1/32 -p tcp -m tcp ! --dport 15008 -m mark ! --mark 0x539/0xfff -j REDIRECT --to-ports 15006',
      '-A ISTIO_OUTPUT ! -o lo -p udp -m udp --dport 53 -m mark ! --mark 0x539/0xfff -j REDIRECT --to-ports 15053',
      '-A ISTIO_OUTPUT ! -d 127.0.0.1/32 -p tcp -m tcp --dport 53 -m mark ! --mark 0x539/0xfff -j REDIRECT --to-ports 15053',
      '-A ISTIO_OUTPUT -p tcp -m mark --mark 0x111/0xfff -j ACCEPT',
      '-A ISTIO_OUTPUT ! -d 127.0.0.1/32 -o lo -j ACCEPT',
      '-A ISTIO_OUTPUT ! -d 127.0.0.1/32 -p tcp -m mark ! --mark 0x539/0xfff -j REDIRECT --to-ports 15001',
    ]);
  });

  it('puts DNS replies and the proxy DNS queries in conntrack zone 1', () => {
    expect(rulesOf(ipv4, 'raw').slice(2)).toEqual([
      '-A ISTIO_OUTPUT -p udp -m udp --dport 53 -m mark --mark 0x539/0xfff -j CT --zone 1',
      '-A ISTIO_PRERT -p udp -m udp --sport 53 -m mark ! --mark 0x539/0xfff -j CT --zone 1',
    ]);
  });

  it('writes the IPv6 twin with ::1 and the IPv6 probe address', () => {
    expect(ipv6).toBeDefined();
    expect(ipv6).toContain(
      '-A ISTIO_PRERT -s fd16:9254:7127:1337:ffff:ffff:ffff:ffff/128 -p tcp -j ACCEPT',
    );
    expect(ipv6).toContain(
      '-A ISTIO_OUTPUT ! -d ::1/128 -p tcp -m mark ! --mark 0x539/0xfff -j REDIRECT --to-ports 15001',
    );
    expect(ipv6).not.toContain('127.0.0.1');
  });

  it('leaves out DNS capture and the raw table when dnsCapture is false, and IPv6 when ipv6 is false', () => {
    const r = inpodIptablesRules({ dnsCapture: false, ipv6: false });
    expect(r.ipv6).toBeUndefined();
    expect(r.ipv4).not.toContain('*raw');
    expect(r.ipv4).not.toContain('15053');
    expect(r.ipv4).toContain('--to-ports 15001');
  });

  it('uses overridden marks and ports everywhere', () => {
    const r = inpodIptablesRules({
      mark: 0x3,
      tproxyMark: 0x4,
      markMask: 0xff,
      outboundPort: 25001,
      inboundPort: 25006,
      hbonePort: 25008,
      dnsPort: 25053,
    });
    expect(r.ipv4).not.toMatch(/0x539|0x111|0xfff\b|1500[1-8]|15053/);
    expect(r.ipv4).toContain('--set-xmark 0x4/0xff');
    expect(r.ipv4).toContain(
      '! --dport 25008 -m mark ! --mark 0x3/0xff -j REDIRECT --to-ports 25006',
    );
  });

  it('rejects out-of-range options with ERR_REDIRECT_INVALID_ARGUMENT', () => {
    for (const bad of [
      { mark: 0 },
      { outboundPort: 70000 },
      { routeTable: 254 },
      { rulePriority: 32766 },
      { probeAddress: 'fd00::1' },
      { probeAddress6: '10.0.0.1' },
    ]) {
      expect(() => inpodIptablesRules(bad)).toThrow(
        expect.objectContaining({ code: 'ERR_REDIRECT_INVALID_ARGUMENT' }),
      );
    }
  });
});

describe('dedicated-mode rules', () => {
  it('redirects TCP not leaving through lo and without the proxy mark to 15001, nothing else', () => {
    const { ipv4 } = dedicatedIptablesRules();
    expect(ipv4).toBe(
      [
        '*nat',
        ':ISTIO_OUTPUT - [0:0]',
        '-A OUTPUT -j ISTIO_OUTPUT',
        '-A ISTIO_OUTPUT ! -o lo -p tcp -m mark ! --mark 0x539/0xfff -j REDIRECT --to-ports 15001',
        'COMMIT',
        '',
      ].join('\n'),
    );
    expect(dedicatedNftRules()).toContain(
      'oifname != "lo" meta l4proto tcp meta mark & 0xfff != 0x539 redirect to :15001',
    );
  });
});

describe('nft scripts', () => {
  it('replace the three inet tables in one transaction (add + delete first, so re-running is safe)', () => {
    const script = inpodNftRules();
    const head = script.split('\n').slice(0, 6);
    expect(head).toEqual([
      'add table inet istio-ambient-mangle',
      'delete table inet istio-ambient-mangle',
      'add table inet istio-ambient-nat',
      'delete table inet istio-ambient-nat',
      'add table inet istio-ambient-raw',
      'delete table inet istio-ambient-raw',
    ]);
    expect(script).toContain('type route hook output priority -150');
    expect(script).toContain(
      'ip daddr != 127.0.0.1 tcp dport != 15008 meta mark & 0xfff != 0x539 redirect to :15006',
    );
    expect(script).toContain(
      'ip6 daddr != ::1 meta l4proto tcp meta mark & 0xfff != 0x539 redirect to :15001',
    );
    expect(script).toContain('ct mark set ct mark & 0xfffff000 | 0x111');
    expect(removeNftRules()).toBe(`${head.join('\n')}\n`);
  });

  it('returns early for IPv6 packets when ipv6 is false', () => {
    const script = inpodNftRules({ ipv6: false });
    expect(script).not.toContain('ip6 ');
    expect(script).toContain('meta nfproto ipv6 return');
  });
});

describe('policy routing', () => {
  it('sends mark 0x111 to table 100 where every address is local, for both families', () => {
    expect(policyRouting()).toEqual({
      ipv4: {
        rule: ['-4', 'rule', 'add', 'fwmark', '0x111/0xfff', 'pref', '32764', 'lookup', '100'],
        route: ['-4', 'route', 'add', 'local', '0.0.0.0/0', 'dev', 'lo', 'table', '100'],
      },
      ipv6: {
        rule: ['-6', 'rule', 'add', 'fwmark', '0x111/0xfff', 'pref', '32764', 'lookup', '100'],
        route: ['-6', 'route', 'add', 'local', '::/0', 'dev', 'lo', 'table', '100'],
      },
    });
    expect(DEFAULT_RULE_OPTIONS.routeTable).toBe(100);
  });
});

reportSkip('rule syntax checked by the real tools', ns.ok, ns.reason);

describe.runIf(ns.ok)('rule syntax checked by the real tools', () => {
  let lab: Lab;
  beforeAll(async () => {
    lab = await createLab({ ipv6: false });
  });
  afterAll(async () => {
    await lab?.destroy();
  });

  const variants = [
    {},
    { dnsCapture: false },
    { ipv6: false },
    { mark: 0x3, markMask: 0xff, outboundPort: 25001 },
  ];
  it.each(variants)('iptables-restore --test and nft -c accept every variant (%o)', async (o) => {
    for (const gen of [inpodIptablesRules, dedicatedIptablesRules]) {
      const r = gen(o);
      await lab.node.exec(['iptables-restore', '--test', '--noflush'], { input: r.ipv4 });
      if (r.ipv6)
        await lab.node.exec(['ip6tables-restore', '--test', '--noflush'], { input: r.ipv6 });
    }
    for (const gen of [inpodNftRules, dedicatedNftRules]) {
      await lab.node.exec(['nft', '-c', '-f', '-'], { input: gen(o) });
    }
  });
});
