import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import {
  localConfigYamlTags,
  PolicyStore,
  parseLocalConfigPolicies,
  policyFromLocalConfig,
  RbacError,
} from '../src/index.js';
import { request } from './helpers.js';

const SPEC_EXAMPLE = `
policies:
- name: only-shop
  namespace: shop
  scope: Namespace
  action: Allow
  dryRun: false
  rules:
  - - - namespaces: [!Exact shop]
    - - destinationPorts: [8080]
`;

function codeOf(text: string): string {
  try {
    parseLocalConfigPolicies(text);
  } catch (err) {
    expect(err).toBeInstanceOf(RbacError);
    return `${(err as RbacError).code}: ${(err as RbacError).message}`;
  }
  throw new Error('did not throw');
}

const wrap = (match: string, extra = 'dryRun: false') => `
policies:
- name: p
  namespace: ns
  scope: Namespace
  action: Allow
  ${extra}
  rules:
  - - - ${match}
`;

describe('ztunnel local-config policies[]', () => {
  it('reads the spec example: one rule of two clauses (namespace AND port)', () => {
    const { policies, warnings } = parseLocalConfigPolicies(SPEC_EXAMPLE);
    expect(warnings).toEqual([]);
    expect(policies).toHaveLength(1);
    const p = policies[0]!;
    expect(p).toMatchObject({
      name: 'only-shop',
      namespace: 'shop',
      scope: 'NAMESPACE',
      action: 'ALLOW',
      dryRun: false,
    });
    expect(p.rules).toHaveLength(1);
    expect(p.rules[0]?.clauses.map((c) => c.matches.length)).toEqual([1, 1]);
    expect(p.rules[0]?.clauses[0]?.matches[0]?.namespaces).toEqual([
      { kind: 'exact', value: 'shop' },
    ]);
    const store = new PolicyStore();
    store.replaceAll(policies);
    const to = { destination: { namespace: 'shop' } };
    expect(
      store.evaluate(request({ ...to, identity: 'spiffe://cluster.local/ns/shop/sa/x' })).allowed,
    ).toBe(true);
    expect(
      store.evaluate(
        request({ ...to, identity: 'spiffe://cluster.local/ns/shop/sa/x', destinationPort: 9090 }),
      ).allowed,
    ).toBe(false);
    expect(store.evaluate(request({ ...to, identity: null })).allowed).toBe(false);
  });

  it('reads every tag and the single-key-map form alike', () => {
    const text = `
- name: p
  namespace: ns
  scope: WorkloadSelector
  action: Deny
  dryRun: true
  rules:
  - - - principals: [!Exact td/ns/a/sa/b, !Prefix td/, !Suffix /sa/b, !Presence, !Presence [], {Exact: x}, {Prefix: y}, {Suffix: z}, {Presence: null}, {Presence: []}]
        notNamespaces: [!Exact "8080"]
        serviceAccounts: [{namespace: a, serviceAccount: b}]
        sourceIps: ["10.0.0.0/8", "fd00::/16", "192.168.1.1"]
        notDestinationPorts: [15008]
`;
    const [p] = parseLocalConfigPolicies(text).policies;
    expect(p).toMatchObject({ scope: 'WORKLOAD_SELECTOR', action: 'DENY', dryRun: true });
    const m = p!.rules[0]!.clauses[0]!.matches[0]!;
    expect(m.principals).toEqual([
      { kind: 'exact', value: 'td/ns/a/sa/b' },
      { kind: 'prefix', value: 'td/' },
      { kind: 'suffix', value: '/sa/b' },
      { kind: 'presence' },
      { kind: 'presence' },
      { kind: 'exact', value: 'x' },
      { kind: 'prefix', value: 'y' },
      { kind: 'suffix', value: 'z' },
      { kind: 'presence' },
      { kind: 'presence' },
    ]);
    expect(m.notNamespaces).toEqual([{ kind: 'exact', value: '8080' }]);
    expect(m.sourceIps).toEqual([
      { address: '10.0.0.0', prefixLength: 8 },
      { address: 'fd00::', prefixLength: 16 },
      { address: '192.168.1.1', prefixLength: 32 },
    ]);
  });

  it('works for callers that parse the whole file themselves with localConfigYamlTags', () => {
    const doc = parse(SPEC_EXAMPLE, { customTags: localConfigYamlTags }) as { policies: unknown[] };
    expect(policyFromLocalConfig(doc.policies[0]).policy.name).toBe('only-shop');
  });

  const bad: Array<[string, string, RegExp]> = [
    [
      'a missing dryRun',
      wrap('namespaces: [!Exact a]', ''),
      /ERR_RBAC_INVALID_LOCAL_CONFIG: .*dryRun: is required/,
    ],
    [
      'an unknown policy key',
      wrap('namespaces: [!Exact a]', 'dryRun: false\n  priority: 1'),
      /ERR_RBAC_INVALID_LOCAL_CONFIG: .*priority: unknown field/,
    ],
    [
      'an unknown match key',
      wrap('hosts: [!Exact a]'),
      /ERR_RBAC_INVALID_LOCAL_CONFIG: .*hosts: unknown field/,
    ],
    [
      'a snake_case key',
      wrap('source_ips: ["10.0.0.0/8"]'),
      /ERR_RBAC_INVALID_LOCAL_CONFIG: .*source_ips: unknown field/,
    ],
    [
      'an untagged string match',
      wrap('namespaces: [shop]'),
      /ERR_RBAC_INVALID_LOCAL_CONFIG: .*expected a tagged string match/,
    ],
    [
      'an unknown tag',
      wrap('namespaces: [!Regex shop]'),
      /ERR_RBAC_INVALID_LOCAL_CONFIG: .*Unresolved tag: !Regex/,
    ],
    [
      'an unknown map variant',
      wrap('namespaces: [{Regex: a}]'),
      /unknown string match variant "Regex"/,
    ],
    ['Presence with a value', wrap('namespaces: [!Presence yes]'), /Presence takes no value/],
    [
      'a proto-style scope',
      wrap('namespaces: [!Exact a]').replace('Namespace', 'NAMESPACE'),
      /scope: must be one of Global/,
    ],
    [
      'the Audit action',
      wrap('namespaces: [!Exact a]').replace('Allow', 'Audit'),
      /action: must be Allow or Deny/,
    ],
    ['a bad CIDR', wrap('sourceIps: ["10.0.0.0/40"]'), /ERR_RBAC_INVALID_CIDR/],
    ['a port as a string', wrap('destinationPorts: ["80"]'), /ERR_RBAC_INVALID_PORT/],
    ['a port out of range', wrap('destinationPorts: [99999]'), /ERR_RBAC_INVALID_PORT/],
    [
      'rules nested one level too shallow',
      wrap('namespaces: [!Exact a]').replace('- - - namespaces', '- - namespaces'),
      /must be a sequence/,
    ],
    ['broken YAML', 'policies: [', /ERR_RBAC_INVALID_LOCAL_CONFIG/],
    [
      'a duplicate key',
      wrap('namespaces: [!Exact a]\n        namespaces: [!Exact b]'),
      /ERR_RBAC_INVALID_LOCAL_CONFIG/,
    ],
  ];
  it.each(bad)('rejects %s', (_name, text, pattern) => {
    expect(codeOf(text)).toMatch(pattern);
  });
});
