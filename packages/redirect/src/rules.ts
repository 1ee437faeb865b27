import net from 'node:net';
import { RedirectError } from './errors.js';

/**
 * The numbers of spec §8.4 (istio-cni `config.go`). Every one can be overridden, but the
 * marks must match what the proxy sets with SO_MARK.
 */
export interface RuleOptions {
  /** Mark on the proxy's own sockets; traffic carrying it is never captured. Default 0x539 (1337). */
  mark?: number;
  /** Connmark for spoofed inbound connections, restored on the app's replies. Default 0x111. */
  tproxyMark?: number;
  /** Mask both marks are matched under. Default 0xfff. */
  markMask?: number;
  /** Outbound capture port. Default 15001. */
  outboundPort?: number;
  /** Inbound plaintext capture port. Default 15006. */
  inboundPort?: number;
  /** HBONE port, excluded from inbound capture. Default 15008. */
  hbonePort?: number;
  /** DNS capture port. Default 15053. */
  dnsPort?: number;
  /** Capture DNS (UDP and TCP port 53) to `dnsPort`, plus the conntrack-zone rules. Default true. */
  dnsCapture?: boolean;
  /** Kubelet probe source (SNATed on the host) that bypasses capture. Default 169.254.7.127. */
  probeAddress?: string;
  /** IPv6 twin of `probeAddress`. Default fd16:9254:7127:1337:ffff:ffff:ffff:ffff. */
  probeAddress6?: string;
  /** Also capture IPv6 (ip6tables, `ip6` nft rules, `ip -6` routing). Default true. */
  ipv6?: boolean;
  /** Routing table for replies to spoofed sources. Default 100. */
  routeTable?: number;
  /** Priority of the fwmark rule. Default 32764. */
  rulePriority?: number;
}

export type ResolvedRuleOptions = Required<RuleOptions>;

export const DEFAULT_RULE_OPTIONS: ResolvedRuleOptions = Object.freeze({
  mark: 0x539,
  tproxyMark: 0x111,
  markMask: 0xfff,
  outboundPort: 15001,
  inboundPort: 15006,
  hbonePort: 15008,
  dnsPort: 15053,
  dnsCapture: true,
  probeAddress: '169.254.7.127',
  probeAddress6: 'fd16:9254:7127:1337:ffff:ffff:ffff:ffff',
  ipv6: true,
  routeTable: 100,
  rulePriority: 32764,
});

/** Chain names shared by iptables sets (spec: ISTIO_PRERT / ISTIO_OUTPUT in mangle, nat, raw). */
export const IPTABLES_CHAINS = ['ISTIO_PRERT', 'ISTIO_OUTPUT'] as const;
export const IPTABLES_TABLES = ['mangle', 'nat', 'raw'] as const;
/** nftables tables of the nft backend (family inet), as istio-cni names them. */
export const NFT_TABLES = [
  'istio-ambient-mangle',
  'istio-ambient-nat',
  'istio-ambient-raw',
] as const;

function invalid(message: string): RedirectError {
  return new RedirectError('ERR_REDIRECT_INVALID_ARGUMENT', message);
}

export function resolveRuleOptions(options: RuleOptions = {}): ResolvedRuleOptions {
  const o = { ...DEFAULT_RULE_OPTIONS };
  for (const [k, v] of Object.entries(options)) {
    if (v !== undefined && k in DEFAULT_RULE_OPTIONS) (o as Record<string, unknown>)[k] = v;
  }
  for (const k of ['mark', 'tproxyMark', 'markMask'] as const) {
    if (!Number.isInteger(o[k]) || o[k] <= 0 || o[k] > 0xffffffff)
      throw invalid(`${k} must be an integer 1..0xffffffff`);
  }
  for (const k of ['outboundPort', 'inboundPort', 'hbonePort', 'dnsPort'] as const) {
    if (!Number.isInteger(o[k]) || o[k] <= 0 || o[k] > 65535)
      throw invalid(`${k} must be an integer 1..65535`);
  }
  if (
    !Number.isInteger(o.routeTable) ||
    o.routeTable <= 0 ||
    o.routeTable > 0xffffffff ||
    [253, 254, 255].includes(o.routeTable)
  ) {
    throw invalid('routeTable must be a positive integer other than the main/local/default tables');
  }
  if (!Number.isInteger(o.rulePriority) || o.rulePriority <= 0 || o.rulePriority >= 32766) {
    throw invalid('rulePriority must be an integer 1..32765');
  }
  if (net.isIPv4(o.probeAddress) === false) throw invalid('probeAddress must be an IPv4 address');
  if (net.isIPv6(o.probeAddress6) === false) throw invalid('probeAddress6 must be an IPv6 address');
  return o;
}

const hex = (n: number) => `0x${n.toString(16)}`;

/** One family's iptables rules, table by table; the chain declarations are implied. */
export type IptablesRuleSet = Partial<Record<(typeof IPTABLES_TABLES)[number], string[]>>;

function inpodIptablesSet(o: ResolvedRuleOptions, family: 4 | 6): IptablesRuleSet {
  const mark = `${hex(o.mark)}/${hex(o.markMask)}`;
  const tmark = `${hex(o.tproxyMark)}/${hex(o.markMask)}`;
  const loopback = family === 4 ? '127.0.0.1/32' : '::1/128';
  const probe = family === 4 ? `${o.probeAddress}/32` : `${o.probeAddress6}/128`;
  const set: IptablesRuleSet = {
    mangle: [
      '-A PREROUTING -j ISTIO_PRERT',
      '-A OUTPUT -j ISTIO_OUTPUT',
      `-A ISTIO_PRERT -m mark --mark ${mark} -j CONNMARK --set-xmark ${tmark}`,
      `-A ISTIO_OUTPUT -m connmark --mark ${tmark} -j CONNMARK --restore-mark --nfmask 0xffffffff --ctmask 0xffffffff`,
    ],
    nat: [
      '-A PREROUTING -j ISTIO_PRERT',
      '-A OUTPUT -j ISTIO_OUTPUT',
      `-A ISTIO_PRERT -s ${probe} -p tcp -j ACCEPT`,
      `-A ISTIO_OUTPUT -d ${probe} -p tcp -j ACCEPT`,
      `-A ISTIO_PRERT ! -d ${loopback} -p tcp -m tcp ! --dport ${o.hbonePort} -m mark ! --mark ${mark} -j REDIRECT --to-ports ${o.inboundPort}`,
    ],
  };
  const nat = set.nat as string[];
  if (o.dnsCapture) {
    nat.push(
      `-A ISTIO_OUTPUT ! -o lo -p udp -m udp --dport 53 -m mark ! --mark ${mark} -j REDIRECT --to-ports ${o.dnsPort}`,
      `-A ISTIO_OUTPUT ! -d ${loopback} -p tcp -m tcp --dport 53 -m mark ! --mark ${mark} -j REDIRECT --to-ports ${o.dnsPort}`,
    );
    set.raw = [
      '-A PREROUTING -j ISTIO_PRERT',
      '-A OUTPUT -j ISTIO_OUTPUT',
      `-A ISTIO_OUTPUT -p udp -m udp --dport 53 -m mark --mark ${mark} -j CT --zone 1`,
      `-A ISTIO_PRERT -p udp -m udp --sport 53 -m mark ! --mark ${mark} -j CT --zone 1`,
    ];
  }
  nat.push(
    `-A ISTIO_OUTPUT -p tcp -m mark --mark ${tmark} -j ACCEPT`,
    `-A ISTIO_OUTPUT ! -d ${loopback} -o lo -j ACCEPT`,
    `-A ISTIO_OUTPUT ! -d ${loopback} -p tcp -m mark ! --mark ${mark} -j REDIRECT --to-ports ${o.outboundPort}`,
  );
  return set;
}

function dedicatedIptablesSet(o: ResolvedRuleOptions): IptablesRuleSet {
  return {
    nat: [
      '-A OUTPUT -j ISTIO_OUTPUT',
      `-A ISTIO_OUTPUT ! -o lo -p tcp -m mark ! --mark ${hex(o.mark)}/${hex(o.markMask)} -j REDIRECT --to-ports ${o.outboundPort}`,
    ],
  };
}

export type RedirectMode = 'inpod' | 'dedicated';

/** The rule set for one mode and address family, as structured lines (used by apply). */
export function iptablesRuleSet(
  mode: RedirectMode,
  family: 4 | 6,
  options: RuleOptions = {},
): IptablesRuleSet {
  const o = resolveRuleOptions(options);
  return mode === 'inpod' ? inpodIptablesSet(o, family) : dedicatedIptablesSet(o);
}

/** Chains a rule set uses in one table (the non-builtin targets of its `-A` lines). */
export function chainsOf(lines: readonly string[]): string[] {
  const chains = new Set<string>();
  for (const line of lines) {
    const chain = line.split(' ')[1] as string;
    if ((IPTABLES_CHAINS as readonly string[]).includes(chain)) chains.add(chain);
  }
  return IPTABLES_CHAINS.filter((c) => chains.has(c));
}

/** Renders a rule set as `iptables-restore --noflush` input that creates (or flushes) the chains and appends the rules. */
export function renderIptablesRestore(
  set: IptablesRuleSet,
  prelude: Partial<Record<string, string[]>> = {},
): string {
  const out: string[] = [];
  for (const table of IPTABLES_TABLES) {
    const lines = set[table];
    const pre = prelude[table] ?? [];
    if (!lines && pre.length === 0) continue;
    out.push(`*${table}`);
    for (const chain of chainsOf(lines ?? [])) out.push(`:${chain} - [0:0]`);
    out.push(...pre, ...(lines ?? []), 'COMMIT');
  }
  return `${out.join('\n')}\n`;
}

export interface IptablesRestoreInput {
  /** For `iptables-restore --noflush`. */
  ipv4: string;
  /** For `ip6tables-restore --noflush`; absent when `ipv6: false`. */
  ipv6?: string;
}

function iptablesInput(mode: RedirectMode, options: RuleOptions): IptablesRestoreInput {
  const o = resolveRuleOptions(options);
  const out: IptablesRestoreInput = { ipv4: renderIptablesRestore(iptablesRuleSet(mode, 4, o)) };
  if (o.ipv6) out.ipv6 = renderIptablesRestore(iptablesRuleSet(mode, 6, o));
  return out;
}

/** The in-pod rule set of spec §8.4 (mangle + nat + raw) as `iptables-restore --noflush` input, for a namespace without them. `applyRedirect` makes it idempotent. */
export function inpodIptablesRules(options: RuleOptions = {}): IptablesRestoreInput {
  return iptablesInput('inpod', options);
}

/** Dedicated mode (`ztunnel-redirect.sh`): nat OUTPUT TCP not out lo, without the proxy's mark → REDIRECT outboundPort. */
export function dedicatedIptablesRules(options: RuleOptions = {}): IptablesRestoreInput {
  return iptablesInput('dedicated', options);
}

function nftDelete(tables: readonly string[]): string[] {
  // `add` then `delete`: removes the table whether or not it exists, inside one transaction.
  return tables.flatMap((t) => [`add table inet ${t}`, `delete table inet ${t}`]);
}

function nftBase(
  table: string,
  hooks: { prerouting?: string[]; output?: string[] },
  kind: 'filter' | 'nat' | 'mangle' | 'raw',
): string[] {
  const out = [`table inet ${table} {`];
  const prio = { filter: '0', nat: '-100', mangle: '-150', raw: '-300' }[kind];
  const type = kind === 'nat' ? 'nat' : 'filter';
  const hook = (name: 'prerouting' | 'output', chainType: string, rules: string[]) => [
    `  chain ${name} {`,
    `    type ${chainType} hook ${name} priority ${prio}; policy accept;`,
    `    jump istio-${name}`,
    '  }',
    `  chain istio-${name} {`,
    ...rules.map((r) => `    ${r}`),
    '  }',
  ];
  if (hooks.prerouting) out.push(...hook('prerouting', type, hooks.prerouting));
  // mangle output is a `route` chain so a restored mark triggers a new routing decision.
  if (hooks.output) out.push(...hook('output', kind === 'mangle' ? 'route' : type, hooks.output));
  out.push('}');
  return out;
}

/** The in-pod rule set as an `nft -f` script: replaces our three `inet` tables atomically, so it is idempotent. */
export function inpodNftRules(options: RuleOptions = {}): string {
  const o = resolveRuleOptions(options);
  const m = `meta mark & ${hex(o.markMask)}`;
  const notOurs = `${m} != ${hex(o.mark)}`;
  const v6 = o.ipv6;
  const fams: Array<{ ip: 'ip' | 'ip6'; lo: string; probe: string }> = [
    { ip: 'ip', lo: '127.0.0.1', probe: o.probeAddress },
  ];
  if (v6) fams.push({ ip: 'ip6', lo: '::1', probe: o.probeAddress6 });
  const natPre: string[] = [];
  const natOut: string[] = [];
  for (const f of fams) natPre.push(`${f.ip} saddr ${f.probe} meta l4proto tcp accept`);
  for (const f of fams) natOut.push(`${f.ip} daddr ${f.probe} meta l4proto tcp accept`);
  for (const f of fams) {
    natPre.push(
      `${f.ip} daddr != ${f.lo} tcp dport != ${o.hbonePort} ${notOurs} redirect to :${o.inboundPort}`,
    );
  }
  if (o.dnsCapture) {
    natOut.push(`oifname != "lo" udp dport 53 ${notOurs} redirect to :${o.dnsPort}`);
    for (const f of fams)
      natOut.push(`${f.ip} daddr != ${f.lo} tcp dport 53 ${notOurs} redirect to :${o.dnsPort}`);
  }
  natOut.push(`meta l4proto tcp ${m} == ${hex(o.tproxyMark)} accept`);
  for (const f of fams) natOut.push(`oifname "lo" ${f.ip} daddr != ${f.lo} accept`);
  for (const f of fams)
    natOut.push(
      `${f.ip} daddr != ${f.lo} meta l4proto tcp ${notOurs} redirect to :${o.outboundPort}`,
    );
  // With ipv6 off, IPv6 must not hit the family-agnostic rules either.
  const only4 = v6 ? [] : ['meta nfproto ipv6 return'];
  const lines = [
    ...nftDelete(NFT_TABLES),
    ...nftBase(
      'istio-ambient-mangle',
      {
        prerouting: [
          ...only4,
          `${m} == ${hex(o.mark)} ct mark set ct mark & ${hex(~o.markMask >>> 0)} | ${hex(o.tproxyMark)}`,
        ],
        output: [
          ...only4,
          `ct mark & ${hex(o.markMask)} == ${hex(o.tproxyMark)} meta mark set ct mark`,
        ],
      },
      'mangle',
    ),
    ...nftBase(
      'istio-ambient-nat',
      { prerouting: [...only4, ...natPre], output: [...only4, ...natOut] },
      'nat',
    ),
  ];
  if (o.dnsCapture) {
    lines.push(
      ...nftBase(
        'istio-ambient-raw',
        {
          prerouting: [...only4, `udp sport 53 ${notOurs} ct zone set 1`],
          output: [...only4, `udp dport 53 ${m} == ${hex(o.mark)} ct zone set 1`],
        },
        'raw',
      ),
    );
  }
  return `${lines.join('\n')}\n`;
}

/** Dedicated mode as an `nft -f` script (idempotent). */
export function dedicatedNftRules(options: RuleOptions = {}): string {
  const o = resolveRuleOptions(options);
  const only4 = o.ipv6 ? [] : ['meta nfproto ipv6 return'];
  const lines = [
    ...nftDelete(NFT_TABLES),
    ...nftBase(
      'istio-ambient-nat',
      {
        output: [
          ...only4,
          `oifname != "lo" meta l4proto tcp meta mark & ${hex(o.markMask)} != ${hex(o.mark)} redirect to :${o.outboundPort}`,
        ],
      },
      'nat',
    ),
  ];
  return `${lines.join('\n')}\n`;
}

/** An `nft -f` script that deletes every table the nft backend may have created. */
export function removeNftRules(): string {
  return `${nftDelete(NFT_TABLES).join('\n')}\n`;
}

/** `ip` argument lists for the policy routing that returns replies to spoofed sources to the proxy. */
export interface PolicyRouting {
  ipv4: { rule: string[]; route: string[] };
  ipv6?: { rule: string[]; route: string[] };
}

/** `ip rule add fwmark 0x111/0xfff pref 32764 lookup 100` and `ip route add local 0.0.0.0/0 dev lo table 100`, with IPv6 twins. */
export function policyRouting(options: RuleOptions = {}): PolicyRouting {
  const o = resolveRuleOptions(options);
  const fam = (f: '-4' | '-6', any: string) => ({
    rule: [
      f,
      'rule',
      'add',
      'fwmark',
      `${hex(o.tproxyMark)}/${hex(o.markMask)}`,
      'pref',
      String(o.rulePriority),
      'lookup',
      String(o.routeTable),
    ],
    route: [f, 'route', 'add', 'local', any, 'dev', 'lo', 'table', String(o.routeTable)],
  });
  const out: PolicyRouting = { ipv4: fam('-4', '0.0.0.0/0') };
  if (o.ipv6) out.ipv6 = fam('-6', '::/0');
  return out;
}
