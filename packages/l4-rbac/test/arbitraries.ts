import fc from 'fast-check';
import type { Authorization, IpCidr, Match, RbacRequest, StringMatch } from '../src/index.js';

// Small value domains so random policies and requests actually meet.
const NAMESPACES = ['a', 'b', 'c'];
const ACCOUNTS = ['x', 'y'];
const IPS = ['10.0.0.1', '10.0.1.7', '192.168.1.1', 'fd00::1', 'fd00:1::9', '::ffff:10.0.0.1'];
const CIDRS: IpCidr[] = [
  { address: '10.0.0.0', prefixLength: 8 },
  { address: '10.0.0.1', prefixLength: 32 },
  { address: '192.168.0.0', prefixLength: 16 },
  { address: 'fd00::', prefixLength: 16 },
  { address: 'fd00::1', prefixLength: 128 },
  { address: '0.0.0.0', prefixLength: 0 },
];
const PORTS = [80, 8080, 9090];

const stringMatch: fc.Arbitrary<StringMatch> = fc.oneof(
  fc.constantFrom(...NAMESPACES).map((value) => ({ kind: 'exact' as const, value })),
  fc.constantFrom('a', 'td/ns/', 'other/').map((value) => ({ kind: 'prefix' as const, value })),
  fc.constantFrom('x', '/sa/y', 'b').map((value) => ({ kind: 'suffix' as const, value })),
  fc.constant({ kind: 'presence' as const }),
);
const principal: fc.Arbitrary<StringMatch> = fc.oneof(
  fc
    .tuple(
      fc.constantFrom('td', 'other'),
      fc.constantFrom(...NAMESPACES),
      fc.constantFrom(...ACCOUNTS),
    )
    .map(([td, ns, sa]) => ({ kind: 'exact' as const, value: `${td}/ns/${ns}/sa/${sa}` })),
  stringMatch,
);
const small = <T>(a: fc.Arbitrary<T>) => fc.array(a, { maxLength: 2 });
const sa = fc
  .tuple(fc.constantFrom(...NAMESPACES), fc.constantFrom(...ACCOUNTS))
  .map(([namespace, serviceAccount]) => ({ namespace, serviceAccount }));
const cidr = fc.constantFrom(...CIDRS);
const port = fc.constantFrom(...PORTS);

export const matchArb: fc.Arbitrary<Match> = fc.record({
  namespaces: small(stringMatch),
  notNamespaces: small(stringMatch),
  principals: small(principal),
  notPrincipals: small(principal),
  sourceIps: small(cidr),
  notSourceIps: small(cidr),
  destinationIps: small(cidr),
  notDestinationIps: small(cidr),
  destinationPorts: small(port),
  notDestinationPorts: small(port),
  serviceAccounts: small(sa),
  notServiceAccounts: small(sa),
});

export const rulesArb = fc.array(
  fc.record({
    clauses: fc.array(fc.record({ matches: fc.array(matchArb, { maxLength: 2 }) }), {
      maxLength: 2,
    }),
  }),
  { maxLength: 3 },
);

export function policyArb(
  overrides: { namespace?: fc.Arbitrary<string>; dryRun?: fc.Arbitrary<boolean> } = {},
): fc.Arbitrary<Authorization> {
  return fc.record({
    name: fc.constantFrom('p1', 'p2', 'p3', 'p4', 'p5', 'p6'),
    namespace: overrides.namespace ?? fc.constantFrom(...NAMESPACES, 'istio-system'),
    scope: fc.constantFrom('GLOBAL' as const, 'NAMESPACE' as const, 'WORKLOAD_SELECTOR' as const),
    action: fc.constantFrom('ALLOW' as const, 'DENY' as const),
    dryRun: overrides.dryRun ?? fc.boolean(),
    rules: rulesArb,
  });
}

/** Policies with distinct keys (a store holds one per key). */
export const policiesArb = fc
  .array(policyArb(), { maxLength: 8 })
  .map((ps) => [...new Map(ps.map((p) => [`${p.namespace}/${p.name}`, p])).values()]);

export const requestArb: fc.Arbitrary<RbacRequest> = fc.record({
  identity: fc.option(
    fc
      .tuple(
        fc.constantFrom('td', 'other'),
        fc.constantFrom(...NAMESPACES),
        fc.constantFrom(...ACCOUNTS),
      )
      .map(([td, ns, s]) => `spiffe://${td}/ns/${ns}/sa/${s}`),
    { nil: null },
  ),
  sourceIp: fc.constantFrom(...IPS),
  destination: fc.record({
    namespace: fc.constantFrom('a', 'b'),
    authorizationPolicies: fc.array(
      fc
        .tuple(fc.constantFrom(...NAMESPACES), fc.constantFrom('p1', 'p2', 'p3'))
        .map(([n, p]) => `${n}/${p}`),
      { maxLength: 3 },
    ),
  }),
  destinationIp: fc.constantFrom(...IPS),
  destinationPort: port,
});
