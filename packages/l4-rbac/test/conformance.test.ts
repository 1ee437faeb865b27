import { describe, expect, it } from 'vitest';
import {
  type Authorization,
  compilePolicy,
  decide,
  type Match,
  matchContext,
  PolicyStore,
  type RbacRequest,
  stringMatches,
} from '../src/index.js';
import {
  cidr,
  exact,
  MATCHING_TLS,
  match,
  OTHER_TLS,
  PLAINTEXT,
  policy,
  prefix,
  presence,
  request,
  rule,
  suffix,
} from './helpers.js';

/** Does a one-rule, one-clause, one-match policy built from `m` match the request? */
function matches(m: Match, req: RbacRequest): boolean {
  return compilePolicy(policy({ rules: [rule([m])] })).matches(matchContext(req));
}

function matchesPolicy(p: Authorization, req: RbacRequest = MATCHING_TLS): boolean {
  return compilePolicy(p).matches(matchContext(req));
}

describe('§5.7 conformance: field semantics (ztunnel src/rbac.rs tests)', () => {
  const table: Array<[string, Match, [boolean, boolean, boolean]]> = [
    [
      'namespaces matches only the peer identity namespace',
      match({ namespaces: [exact('namespace')] }),
      [false, true, false],
    ],
    [
      'notNamespaces holds for plaintext and other namespaces',
      match({ notNamespaces: [exact('namespace')] }),
      [true, false, true],
    ],
    [
      'serviceAccounts needs the identity namespace and account',
      match({ serviceAccounts: [{ namespace: 'namespace', serviceAccount: 'account' }] }),
      [false, true, false],
    ],
    [
      'notServiceAccounts is the negation for identities and true for plaintext',
      match({ notServiceAccounts: [{ namespace: 'namespace', serviceAccount: 'account' }] }),
      [true, false, true],
    ],
    [
      'principals compare the SPIFFE ID without spiffe://',
      match({ principals: [exact('td/ns/namespace/sa/account')] }),
      [false, true, false],
    ],
    [
      'principals written with spiffe:// never match',
      match({ principals: [exact('spiffe://td/ns/namespace/sa/account')] }),
      [false, false, false],
    ],
    [
      'principal presence is false for plaintext',
      match({ principals: [presence] }),
      [false, true, true],
    ],
    [
      'notPrincipals presence holds only for plaintext (the STRICT shape)',
      match({ notPrincipals: [presence] }),
      [true, false, false],
    ],
    [
      'namespace presence is false for plaintext',
      match({ namespaces: [presence] }),
      [false, true, true],
    ],
    [
      'sourceIps depends on the IP only, not the identity',
      match({ sourceIps: [cidr('127.0.0.1', 32)] }),
      [true, true, true],
    ],
    [
      'notSourceIps excludes the IP whatever the identity',
      match({ notSourceIps: [cidr('127.0.0.1', 32)] }),
      [false, false, false],
    ],
    [
      'destinationIps is a CIDR: 127.0.0.1/24 contains 127.0.0.2',
      match({ destinationIps: [cidr('127.0.0.1', 24)] }),
      [true, true, true],
    ],
    [
      'destinationPorts compares the resolved target port',
      match({ destinationPorts: [8080] }),
      [true, true, true],
    ],
    [
      'notDestinationPorts excludes the port',
      match({ notDestinationPorts: [8080] }),
      [false, false, false],
    ],
    [
      'a port that is not the target port does not match',
      match({ destinationPorts: [15008] }),
      [false, false, false],
    ],
  ];
  it.each(table)('%s', (_name, m, [plain, tls, other]) => {
    expect([matches(m, PLAINTEXT), matches(m, MATCHING_TLS), matches(m, OTHER_TLS)]).toEqual([
      plain,
      tls,
      other,
    ]);
  });

  it('destinationIps 127.0.0.1/24 matches 127.0.0.4 and not 127.0.1.4', () => {
    const m = match({ destinationIps: [cidr('127.0.0.1', 24)] });
    expect(matches(m, request({ destinationIp: '127.0.0.4' }))).toBe(true);
    expect(matches(m, request({ destinationIp: '127.0.1.4' }))).toBe(false);
  });

  it('sourceIps with a different /32 does not match', () => {
    expect(matches(match({ sourceIps: [cidr('127.0.0.9', 32)] }), PLAINTEXT)).toBe(false);
  });

  it('IPv6 CIDRs contain IPv6 peers and never IPv4 ones', () => {
    const m = match({ sourceIps: [cidr('fd00:10::', 32)] });
    expect(matches(m, request({ sourceIp: 'fd00:10:ffff::1' }))).toBe(true);
    expect(matches(m, request({ sourceIp: 'fd00:11::1' }))).toBe(false);
    expect(matches(m, request({ sourceIp: '10.0.0.1' }))).toBe(false);
  });

  it('an IPv4-mapped IPv6 peer matches IPv4 CIDRs, and a mapped CIDR matches IPv4 peers', () => {
    expect(
      matches(
        match({ sourceIps: [cidr('10.0.0.0', 8)] }),
        request({ sourceIp: '::ffff:10.2.3.4' }),
      ),
    ).toBe(true);
    expect(
      matches(
        match({ sourceIps: [cidr('::ffff:10.0.0.0', 104)] }),
        request({ sourceIp: '10.2.3.4' }),
      ),
    ).toBe(true);
    expect(
      matches(
        match({ sourceIps: [cidr('::ffff:10.0.0.0', 104)] }),
        request({ sourceIp: '11.2.3.4' }),
      ),
    ).toBe(false);
  });

  it('string matchers exact/prefix/suffix/presence are all false against ""', () => {
    for (const m of [exact('foo'), prefix('foo'), suffix('foo'), presence]) {
      expect(stringMatches(m, '')).toBe(false);
    }
  });

  it('string matchers are all false without an identity, even exact ""', () => {
    for (const m of [exact(''), prefix(''), suffix(''), presence]) {
      expect(stringMatches(m, undefined)).toBe(false);
    }
  });

  it('prefix and suffix compare the start and end of the value', () => {
    expect(stringMatches(prefix('td/ns/name'), 'td/ns/namespace/sa/account')).toBe(true);
    expect(stringMatches(suffix('/sa/account'), 'td/ns/namespace/sa/account')).toBe(true);
    expect(stringMatches(suffix('/sa/other'), 'td/ns/namespace/sa/account')).toBe(false);
  });

  it('a peer from another trust domain fails principals but passes namespaces and serviceAccounts', () => {
    const foreign = request({ identity: 'spiffe://other.td/ns/namespace/sa/account' });
    expect(matches(match({ principals: [exact('td/ns/namespace/sa/account')] }), foreign)).toBe(
      false,
    );
    expect(matches(match({ namespaces: [exact('namespace')] }), foreign)).toBe(true);
    expect(
      matches(
        match({ serviceAccounts: [{ namespace: 'namespace', serviceAccount: 'account' }] }),
        foreign,
      ),
    ).toBe(true);
  });

  it('a non-Istio SPIFFE ID has a principal but no namespace or service account', () => {
    const odd = request({ identity: 'spiffe://td/workload/x' });
    expect(matches(match({ principals: [exact('td/workload/x')] }), odd)).toBe(true);
    expect(matches(match({ namespaces: [presence] }), odd)).toBe(false);
  });

  it('a parsed identity object is read through toString() and its namespace', () => {
    const id = {
      namespace: 'namespace',
      serviceAccount: 'account',
      toString: () => 'spiffe://td/ns/namespace/sa/account',
    };
    expect(
      matches(
        match({ serviceAccounts: [{ namespace: 'namespace', serviceAccount: 'account' }] }),
        request({ identity: id }),
      ),
    ).toBe(true);
  });

  it('fields in one match are ANDed and values in a field are ORed', () => {
    const m = match({ namespaces: [exact('x'), exact('namespace')], destinationPorts: [1, 8080] });
    expect(matches(m, MATCHING_TLS)).toBe(true);
    expect(matches({ ...m, destinationPorts: [1] }, MATCHING_TLS)).toBe(false);
  });

  it('a positive and a negative list in one field must both hold', () => {
    const m = match({ namespaces: [presence], notNamespaces: [exact('other')] });
    expect([matches(m, PLAINTEXT), matches(m, MATCHING_TLS), matches(m, OTHER_TLS)]).toEqual([
      false,
      true,
      false,
    ]);
  });
});

describe('§5.3 degenerate shapes (ztunnel rbac_empty_policy)', () => {
  const ns = match({ namespaces: [exact('namespace')] });
  it('a policy with zero rules never matches', () => {
    expect(matchesPolicy(policy({ rules: [] }))).toBe(false);
  });
  it('a rule with zero clauses matches everything, plaintext included', () => {
    expect(matchesPolicy(policy({ rules: [{ clauses: [] }] }), PLAINTEXT)).toBe(true);
  });
  it('a clause with zero matches is true', () => {
    expect(matchesPolicy(policy({ rules: [{ clauses: [{ matches: [] }] }] }), PLAINTEXT)).toBe(
      true,
    );
  });
  it('a clause whose only match is empty is false', () => {
    expect(matchesPolicy(policy({ rules: [rule([match({})])] }))).toBe(false);
  });
  it('an empty match beside a real one is skipped, not counted as true', () => {
    const p = policy({ rules: [rule([match({}), ns])] });
    expect([matchesPolicy(p, MATCHING_TLS), matchesPolicy(p, OTHER_TLS)]).toEqual([true, false]);
  });
  it('rules are ORed: one matching rule is enough', () => {
    const p = policy({ rules: [rule([match({ destinationPorts: [1] })]), rule([ns])] });
    expect(matchesPolicy(p)).toBe(true);
  });
  it('clauses are ANDed: every clause of a rule must hold', () => {
    const p = policy({ rules: [rule([ns], [match({ destinationPorts: [1] })])] });
    expect(matchesPolicy(p)).toBe(false);
    const q = policy({ rules: [rule([ns], [match({ destinationPorts: [8080] })])] });
    expect(matchesPolicy(q)).toBe(true);
  });
  it('matches in a clause are ORed', () => {
    const p = policy({ rules: [rule([match({ destinationPorts: [1] }), ns])] });
    expect(matchesPolicy(p)).toBe(true);
  });
  it('a rule with an empty-match clause never fires even if its other clauses hold', () => {
    const p = policy({ rules: [rule([ns], [match({})])] });
    expect(matchesPolicy(p)).toBe(false);
  });
});

describe('§5.2 decision algorithm', () => {
  const allowNs = policy({
    name: 'allow',
    rules: [rule([match({ namespaces: [exact('namespace')] })])],
  });
  const denyOther = policy({
    name: 'deny',
    action: 'DENY',
    rules: [rule([match({ namespaces: [exact('other')] })])],
  });
  const dryDenyAll = policy({
    name: 'dry-deny',
    action: 'DENY',
    dryRun: true,
    rules: [{ clauses: [] }],
  });
  const dryAllowNone = policy({ name: 'dry-allow', dryRun: true, rules: [] });
  const dryAllowAll = policy({ name: 'dry-allow-all', dryRun: true, rules: [{ clauses: [] }] });
  const d = (policies: Authorization[], req: RbacRequest) =>
    decide(policies.map(compilePolicy), req);

  it('no policies → allow', () => {
    expect(d([], PLAINTEXT)).toMatchObject({
      allowed: true,
      reason: 'no-allow-policies',
      applied: 0,
    });
  });
  it('only DENY policies that do not match → allow', () => {
    expect(d([denyOther], MATCHING_TLS)).toMatchObject({
      allowed: true,
      reason: 'no-allow-policies',
    });
  });
  it('a matching enforced DENY rejects with "explicitly denied by: ns/name"', () => {
    expect(d([allowNs, denyOther], OTHER_TLS)).toEqual({
      allowed: false,
      reason: 'explicitly-denied',
      policy: 'ns/deny',
      message: 'explicitly denied by: ns/deny',
      applied: 2,
    });
  });
  it('DENY wins over a matching ALLOW', () => {
    const allowAll = policy({ name: 'allow-all', rules: [{ clauses: [] }] });
    expect(d([allowAll, denyOther], OTHER_TLS)).toMatchObject({
      allowed: false,
      policy: 'ns/deny',
    });
  });
  it('an ALLOW must match once any enforced ALLOW applies: "allow policies exist, but none allowed"', () => {
    expect(d([allowNs], PLAINTEXT)).toMatchObject({
      allowed: false,
      reason: 'no-allow-matched',
      message: 'allow policies exist, but none allowed',
    });
    expect(d([allowNs], MATCHING_TLS)).toMatchObject({
      allowed: true,
      reason: 'allowed-by-policy',
      policy: 'ns/allow',
      message: 'allowed by: ns/allow',
    });
  });
  it('dry-run wildcard policies never change the verdict but say what they would do', () => {
    const withDry = d([allowNs, denyOther, dryDenyAll, dryAllowNone], MATCHING_TLS);
    expect(withDry).toMatchObject({ allowed: true, policy: 'ns/allow', applied: 4 });
    expect(withDry.dryRun).toEqual({
      denyMatched: ['ns/dry-deny'],
      allowMatched: [],
      allowed: false,
      changed: true,
      changedBy: ['ns/dry-deny'],
    });
    const denied = d([allowNs, dryAllowAll], PLAINTEXT);
    expect(denied).toMatchObject({ allowed: false, reason: 'no-allow-matched' });
    expect(denied.dryRun).toMatchObject({
      allowMatched: ['ns/dry-allow-all'],
      allowed: true,
      changed: true,
    });
  });
  it('a dry-run ALLOW alone does not make the allow-list enforced', () => {
    const r = d([dryAllowNone], PLAINTEXT);
    expect(r).toMatchObject({ allowed: true, reason: 'no-allow-policies' });
    expect(r.dryRun).toEqual({
      denyMatched: [],
      allowMatched: [],
      allowed: false,
      changed: true,
      changedBy: ['ns/dry-allow'],
    });
  });
  it('decide accepts plain policies, validating them first', () => {
    expect(decide([denyOther], OTHER_TLS)).toMatchObject({ allowed: false, policy: 'ns/deny' });
    expect(() => decide([{ ...denyOther, action: 'AUDIT' as never }], OTHER_TLS)).toThrow(
      expect.objectContaining({ code: 'ERR_RBAC_INVALID_POLICY' }),
    );
  });
  it('a dry-run policy that matches but changes nothing is listed without changedBy', () => {
    const r = d([denyOther, { ...denyOther, name: 'dry', dryRun: true }], OTHER_TLS);
    expect(r.dryRun).toEqual({
      denyMatched: ['ns/dry'],
      allowMatched: [],
      allowed: false,
      changed: false,
      changedBy: [],
    });
  });
  it('a namespace ALLOW for the waypoint principal denies a raw client (the 401 case)', () => {
    const waypointOnly = policy({
      name: 'waypoint-only',
      rules: [rule([match({ principals: [exact('cluster.local/ns/ns/sa/waypoint')] })])],
    });
    const raw = request({ identity: 'spiffe://cluster.local/ns/ns/sa/client' });
    expect(d([waypointOnly], raw)).toMatchObject({
      allowed: false,
      message: 'allow policies exist, but none allowed',
    });
    expect(
      d([waypointOnly], request({ identity: 'spiffe://cluster.local/ns/ns/sa/waypoint' })).allowed,
    ).toBe(true);
  });
});

describe('§5.1 which policies apply (PolicyStore)', () => {
  const denyAll = (fields: Partial<Authorization>) =>
    policy({ action: 'DENY', rules: [{ clauses: [] }], ...fields });

  it('a NAMESPACE policy applies only to workloads of its namespace', () => {
    const store = new PolicyStore();
    store.set(denyAll({ name: 'd', namespace: 'a' }));
    expect(store.evaluate(request({ destination: { namespace: 'a' } })).allowed).toBe(false);
    expect(store.evaluate(request({ destination: { namespace: 'b' } })).allowed).toBe(true);
  });
  it('a GLOBAL policy applies to every namespace', () => {
    const store = new PolicyStore();
    store.set(denyAll({ name: 'g', namespace: 'istio-system', scope: 'GLOBAL' }));
    for (const ns of ['a', 'b', 'istio-system']) {
      expect(store.evaluate(request({ destination: { namespace: ns } }))).toMatchObject({
        allowed: false,
        policy: 'istio-system/g',
      });
    }
  });
  it('a WORKLOAD_SELECTOR policy applies only through the workload list', () => {
    const store = new PolicyStore();
    store.set(denyAll({ name: 'sel', namespace: 'a', scope: 'WORKLOAD_SELECTOR' }));
    expect(store.evaluate(request({ destination: { namespace: 'a' } })).allowed).toBe(true);
    expect(
      store.evaluate(request({ destination: { namespace: 'a', authorizationPolicies: ['a/sel'] } }))
        .allowed,
    ).toBe(false);
  });
  it('unknown keys in the workload list are skipped and reported', () => {
    const store = new PolicyStore();
    const r = store.evaluate(
      request({ destination: { namespace: 'a', authorizationPolicies: ['a/missing'] } }),
    );
    expect(r).toMatchObject({ allowed: true, unknownPolicies: ['a/missing'] });
  });
  it('a policy listed twice, or listed and namespace-scoped, counts once', () => {
    const store = new PolicyStore();
    store.set(policy({ name: 'allow', namespace: 'a', rules: [{ clauses: [] }] }));
    const r = store.evaluate(
      request({ destination: { namespace: 'a', authorizationPolicies: ['a/allow', 'a/allow'] } }),
    );
    expect(r.applied).toBe(1);
  });
  it('changing a policy scope re-indexes it (rbac_change_scope)', () => {
    const store = new PolicyStore();
    const p = denyAll({ name: 'd', namespace: 'a' });
    store.set(p);
    const inA = request({ destination: { namespace: 'a' } });
    expect(store.evaluate(inA).allowed).toBe(false);
    store.set({ ...p, scope: 'WORKLOAD_SELECTOR' });
    expect(store.evaluate(inA).allowed).toBe(true);
    store.set({ ...p, scope: 'GLOBAL' });
    expect(store.evaluate(request({ destination: { namespace: 'z' } })).allowed).toBe(false);
    store.set({ ...p, scope: 'NAMESPACE' });
    expect(store.evaluate(request({ destination: { namespace: 'z' } })).allowed).toBe(true);
    expect(store.size).toBe(1);
  });
  it('changing a policy action or dry-run flag moves it between groups', () => {
    const store = new PolicyStore();
    const p = denyAll({ name: 'd', namespace: 'a' });
    store.set(p);
    const inA = request({ destination: { namespace: 'a' } });
    store.set({ ...p, dryRun: true });
    expect(store.evaluate(inA)).toMatchObject({ allowed: true, dryRun: { denyMatched: ['a/d'] } });
    store.set({ ...p, action: 'ALLOW', rules: [] });
    expect(store.evaluate(inA)).toMatchObject({ allowed: false, reason: 'no-allow-matched' });
  });
  it('the destination network plays no part: the request has no network to match on', () => {
    const store = new PolicyStore();
    store.set(denyAll({ name: 'd', namespace: 'a' }));
    const withNetwork = {
      ...request({ destination: { namespace: 'a' } }),
      network: 'remote',
    } as RbacRequest;
    expect(store.evaluate(withNetwork).allowed).toBe(false);
  });
});
