import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import {
  compilePolicy,
  emptyMatch,
  loadPolicyDocuments,
  matchContext,
  RbacError,
  translateAuthorizationPolicy,
} from '../src/index.js';
import { request } from './helpers.js';

const ap = (
  spec: string,
  meta = 'name: p\n  namespace: shop',
  apiVersion = 'security.istio.io/v1',
) =>
  parse(
    `apiVersion: ${apiVersion}\nkind: AuthorizationPolicy\nmetadata:\n  ${meta}\nspec:\n${spec}`,
  );

function errorOf(manifest: unknown): RbacError {
  try {
    translateAuthorizationPolicy(manifest);
  } catch (err) {
    expect(err).toBeInstanceOf(RbacError);
    return err as RbacError;
  }
  throw new Error('did not throw');
}

describe('istiod AuthorizationPolicy translation: scope and action', () => {
  it('a selector makes it WORKLOAD_SELECTOR and keeps the labels', () => {
    const t = translateAuthorizationPolicy(ap('  selector:\n    matchLabels: {app: api}'));
    expect(t.policy).toMatchObject({
      scope: 'WORKLOAD_SELECTOR',
      action: 'ALLOW',
      dryRun: false,
      rules: [],
    });
    expect(t.selector).toEqual({ app: 'api' });
  });
  it('no selector makes it NAMESPACE; an empty matchLabels counts as no selector', () => {
    expect(translateAuthorizationPolicy(ap('  action: DENY')).policy?.scope).toBe('NAMESPACE');
    expect(translateAuthorizationPolicy(ap('  selector: {matchLabels: {}}')).policy?.scope).toBe(
      'NAMESPACE',
    );
  });
  it('no selector in the root namespace makes it GLOBAL (root namespace is an option)', () => {
    const inRoot = ap('  action: DENY', 'name: g\n  namespace: istio-system');
    expect(translateAuthorizationPolicy(inRoot).policy?.scope).toBe('GLOBAL');
    const custom = ap('  action: DENY', 'name: g\n  namespace: mesh-root');
    expect(translateAuthorizationPolicy(custom, { rootNamespace: 'mesh-root' }).policy?.scope).toBe(
      'GLOBAL',
    );
    expect(translateAuthorizationPolicy(custom).policy?.scope).toBe('NAMESPACE');
  });
  it('v1beta1 manifests translate the same as v1', () => {
    const spec = '  action: DENY\n  rules:\n  - from:\n    - source: {namespaces: [a]}';
    expect(translateAuthorizationPolicy(ap(spec, undefined, 'security.istio.io/v1beta1'))).toEqual(
      translateAuthorizationPolicy(ap(spec)),
    );
  });
  it('AUDIT and CUSTOM fail with ERR_RBAC_UNSUPPORTED_ACTION and istiod wording', () => {
    for (const action of ['AUDIT', 'CUSTOM']) {
      const err = errorOf(ap(`  action: ${action}`));
      expect(err.code).toBe('ERR_RBAC_UNSUPPORTED_ACTION');
      expect(err.message).toContain(`ztunnel does not support the ${action} action`);
    }
  });
  it('targetRef(s) policies are not for ztunnel: no policy, one warning', () => {
    for (const ref of [
      'targetRef: {kind: Gateway, name: w}',
      'targetRefs: [{kind: Service, name: s}]',
    ]) {
      const t = translateAuthorizationPolicy(ap(`  action: CUSTOM\n  ${ref}`));
      expect(t.policy).toBeUndefined();
      expect(t.warnings.map((w) => w.code)).toEqual(['WARN_RBAC_TARGET_REF']);
    }
  });
  it('a dry-run annotation drops the policy unless dry-run forwarding is enabled', () => {
    const m = ap(
      '  action: DENY',
      'name: p\n  namespace: shop\n  annotations: {istio.io/dry-run: "true"}',
    );
    const off = translateAuthorizationPolicy(m);
    expect(off.policy).toBeUndefined();
    expect(off.warnings.map((w) => w.code)).toEqual(['WARN_RBAC_DRY_RUN_NOT_SENT']);
    expect(translateAuthorizationPolicy(m, { enableDryRun: true }).policy?.dryRun).toBe(true);
    const notTrue = ap(
      '  action: DENY',
      'name: p\n  namespace: shop\n  annotations: {istio.io/dry-run: "false"}',
    );
    expect(translateAuthorizationPolicy(notTrue).policy?.dryRun).toBe(false);
  });
});

describe('istiod AuthorizationPolicy translation: rules', () => {
  it('to → one clause of port matches, from → one clause of source matches, each when → its own clause', () => {
    const t = translateAuthorizationPolicy(
      ap(`  rules:
  - to:
    - operation: {ports: ["8080", "9090"]}
    - operation: {notPorts: ["22"]}
    from:
    - source: {principals: ["cluster.local/ns/a/sa/b"], ipBlocks: ["10.0.0.0/8", "fd00::1"]}
    - source: {namespaces: ["a*"], notNamespaces: ["*-test"], serviceAccounts: ["api", "other/sa"]}
    when:
    - key: destination.port
      values: ["8080"]
    - key: source.principal
      notValues: ["*"]`),
    );
    const [rule] = t.policy!.rules;
    expect(rule?.clauses).toHaveLength(4);
    expect(rule?.clauses[0]?.matches).toEqual([
      { ...emptyMatch(), destinationPorts: [8080, 9090] },
      { ...emptyMatch(), notDestinationPorts: [22] },
    ]);
    expect(rule?.clauses[1]?.matches).toEqual([
      {
        ...emptyMatch(),
        principals: [{ kind: 'exact', value: 'cluster.local/ns/a/sa/b' }],
        sourceIps: [
          { address: '10.0.0.0', prefixLength: 8 },
          { address: 'fd00::1', prefixLength: 128 },
        ],
      },
      {
        ...emptyMatch(),
        namespaces: [{ kind: 'prefix', value: 'a' }],
        notNamespaces: [{ kind: 'suffix', value: '-test' }],
        serviceAccounts: [
          { namespace: 'shop', serviceAccount: 'api' },
          { namespace: 'other', serviceAccount: 'sa' },
        ],
      },
    ]);
    expect(rule?.clauses[2]?.matches).toEqual([{ ...emptyMatch(), destinationPorts: [8080] }]);
    expect(rule?.clauses[3]?.matches).toEqual([
      { ...emptyMatch(), notPrincipals: [{ kind: 'presence' }] },
    ]);
  });

  it('converts "*" to presence, "*x" to suffix, "x*" to prefix, else exact', () => {
    const t = translateAuthorizationPolicy(
      ap(
        '  rules:\n  - from:\n    - source: {principals: ["*", "*/sa/x", "cluster.local/*", "a/b"]}',
      ),
    );
    expect(t.policy!.rules[0]?.clauses[0]?.matches[0]?.principals).toEqual([
      { kind: 'presence' },
      { kind: 'suffix', value: '/sa/x' },
      { kind: 'prefix', value: 'cluster.local/' },
      { kind: 'exact', value: 'a/b' },
    ]);
  });

  it('every L4 when key lands on its field', () => {
    const t = translateAuthorizationPolicy(
      ap(`  rules:
  - when:
    - {key: source.ip, values: ["10.0.0.1"], notValues: ["10.0.0.2/32"]}
    - {key: source.namespace, values: [a]}
    - {key: destination.ip, notValues: ["fd00::/8"]}`),
    );
    const clauses = t.policy!.rules[0]!.clauses;
    expect(clauses.map((c) => c.matches[0])).toEqual([
      {
        ...emptyMatch(),
        sourceIps: [{ address: '10.0.0.1', prefixLength: 32 }],
        notSourceIps: [{ address: '10.0.0.2', prefixLength: 32 }],
      },
      { ...emptyMatch(), namespaces: [{ kind: 'exact', value: 'a' }] },
      { ...emptyMatch(), notDestinationIps: [{ address: 'fd00::', prefixLength: 8 }] },
    ]);
  });

  it('an ALLOW with no rules (spec: {}) exists and allows nothing, as Istio allow-nothing', () => {
    const t = translateAuthorizationPolicy(ap('  {}'));
    expect(t.policy).toMatchObject({ action: 'ALLOW', scope: 'NAMESPACE', rules: [] });
    expect(t.warnings).toEqual([]);
    expect(compilePolicy(t.policy!).matches(matchContext(request()))).toBe(false);
  });

  it('an empty rule ({}) becomes a rule with zero clauses: it matches everything', () => {
    const t = translateAuthorizationPolicy(ap('  rules:\n  - {}'));
    expect(t.policy!.rules).toEqual([{ clauses: [] }]);
  });

  it('an ALLOW rule with an L7 field is dropped whole, with one warning per field', () => {
    const t = translateAuthorizationPolicy(
      ap(`  rules:
  - to:
    - operation: {methods: [GET], paths: ["/x"], ports: ["80"]}
  - from:
    - source: {requestPrincipals: ["*"]}
  - when:
    - {key: "request.headers[x-user]", values: [a]}
  - from:
    - source: {namespaces: [a]}`),
    );
    expect(t.policy!.rules).toHaveLength(1);
    expect(t.warnings.map((w) => [w.code, w.path])).toEqual([
      [
        'WARN_RBAC_L7_RULE_DROPPED',
        'AuthorizationPolicy shop/p: spec.rules[0].to[0].operation.methods',
      ],
      [
        'WARN_RBAC_L7_RULE_DROPPED',
        'AuthorizationPolicy shop/p: spec.rules[0].to[0].operation.paths',
      ],
      [
        'WARN_RBAC_L7_RULE_DROPPED',
        'AuthorizationPolicy shop/p: spec.rules[1].from[0].source.requestPrincipals',
      ],
      [
        'WARN_RBAC_L7_RULE_DROPPED',
        'AuthorizationPolicy shop/p: spec.rules[2].when[0] (key request.headers[x-user])',
      ],
    ]);
  });

  it('an ALLOW whose only rule is L7 still exists and allows nothing: deny by default', () => {
    const t = translateAuthorizationPolicy(
      ap('  rules:\n  - to:\n    - operation: {methods: [GET]}'),
    );
    expect(t.policy).toMatchObject({ action: 'ALLOW', rules: [] });
    const anyone = request({ identity: 'spiffe://cluster.local/ns/shop/sa/a' });
    expect(compilePolicy(t.policy!).matches(matchContext(anyone))).toBe(false);
  });

  it('a DENY rule keeps its L4 fields and omits L7 ones, so it denies more broadly', () => {
    const t = translateAuthorizationPolicy(
      ap('  action: DENY\n  rules:\n  - to:\n    - operation: {methods: [POST], ports: ["8080"]}'),
    );
    expect(t.policy!.rules[0]?.clauses[0]?.matches).toEqual([
      { ...emptyMatch(), destinationPorts: [8080] },
    ]);
    expect(t.warnings.map((w) => w.code)).toEqual(['WARN_RBAC_L7_FIELD_IGNORED']);
    expect(compilePolicy(t.policy!).matches(matchContext(request()))).toBe(true);
  });

  it('a DENY rule left with only empty matches never fires, and says so', () => {
    const t = translateAuthorizationPolicy(
      ap(
        '  action: DENY\n  rules:\n  - to:\n    - operation: {paths: ["/admin"]}\n  - when:\n    - {key: "request.auth.claims[iss]", values: [x]}',
      ),
    );
    expect(t.warnings.map((w) => w.code)).toEqual([
      'WARN_RBAC_L7_FIELD_IGNORED',
      'WARN_RBAC_DENY_RULE_NEVER_MATCHES',
      'WARN_RBAC_L7_FIELD_IGNORED',
      'WARN_RBAC_DENY_RULE_NEVER_MATCHES',
    ]);
    expect(compilePolicy(t.policy!).matches(matchContext(request()))).toBe(false);
  });

  it('unparsable ports and IP blocks are skipped as istiod does, with a warning', () => {
    const t = translateAuthorizationPolicy(
      ap(
        '  rules:\n  - to:\n    - operation: {ports: ["http", "80"]}\n    from:\n    - source: {ipBlocks: ["10.0.0.0/99", "10.1.0.0/16"]}',
      ),
    );
    expect(t.warnings.map((w) => w.code)).toEqual([
      'WARN_RBAC_VALUE_SKIPPED',
      'WARN_RBAC_VALUE_SKIPPED',
    ]);
    const [to, from] = t.policy!.rules[0]!.clauses;
    expect(to?.matches[0]?.destinationPorts).toEqual([80]);
    expect(from?.matches[0]?.sourceIps).toEqual([{ address: '10.1.0.0', prefixLength: 16 }]);
  });
});

describe('istiod AuthorizationPolicy translation: bad manifests', () => {
  const cases: Array<[string, unknown, RegExp]> = [
    ['an unknown spec field', ap('  actions: DENY'), /spec.actions: unknown field/],
    [
      'an unknown source field',
      ap('  rules:\n  - from:\n    - source: {principal: [x]}'),
      /source.principal: unknown field/,
    ],
    [
      'an unknown operation field',
      ap('  rules:\n  - to:\n    - operation: {port: ["80"]}'),
      /operation.port: unknown field/,
    ],
    ['an unknown action', ap('  action: LOG'), /spec.action: must be ALLOW, DENY, AUDIT or CUSTOM/],
    [
      'a wrong apiVersion',
      ap('  action: DENY', undefined, 'security.istio.io/v2'),
      /apiVersion: must be one of/,
    ],
    ['a missing name', ap('  action: DENY', 'namespace: shop'), /metadata.name: is required/],
    [
      'a when without key',
      ap('  rules:\n  - when:\n    - values: [a]'),
      /key: must be a non-empty string/,
    ],
    [
      'a non-string label',
      ap('  selector: {matchLabels: {app: {x: 1}}}'),
      /matchLabels.app: must be a string/,
    ],
  ];
  it.each(cases)('rejects %s with ERR_RBAC_INVALID_MANIFEST', (_name, m, pattern) => {
    const err = errorOf(m);
    expect(err.code).toBe('ERR_RBAC_INVALID_MANIFEST');
    expect(err.message).toMatch(pattern);
  });
});

describe('loadPolicyDocuments', () => {
  it('reads several documents, a List, and a local config, and ignores other kinds with a warning', () => {
    const text = `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: a, namespace: shop}
spec: {selector: {matchLabels: {app: api}}}
---
apiVersion: v1
kind: List
items:
- apiVersion: security.istio.io/v1beta1
  kind: AuthorizationPolicy
  metadata: {name: b, namespace: shop}
  spec: {action: DENY}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: c}
---
policies:
- {name: d, namespace: shop, scope: Global, action: Deny, dryRun: false, rules: [[[{namespaces: [!Exact x]}]]]}
`;
    const loaded = loadPolicyDocuments(text, { source: 'all.yaml' });
    expect(loaded.policies.map((p) => `${p.namespace}/${p.name} ${p.scope}`)).toEqual([
      'shop/a WORKLOAD_SELECTOR',
      'shop/b NAMESPACE',
      'shop/d GLOBAL',
    ]);
    expect(loaded.selectors.get('shop/a')).toEqual({ app: 'api' });
    expect(loaded.warnings.map((w) => w.code)).toEqual(['WARN_RBAC_NOT_A_POLICY']);
  });
  it('reports broken YAML as ERR_RBAC_INVALID_MANIFEST with the source name', () => {
    expect(() => loadPolicyDocuments('kind: [', { source: 'x.yaml' })).toThrow(/x.yaml/);
  });
});
