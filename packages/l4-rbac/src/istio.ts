import { RbacError, type RbacWarning } from './errors.js';
import { parseCidr } from './ip.js';
import { parseYamlDocuments, policyFromLocalConfig } from './local-config.js';
import { arr, fail, isObject, istioSecurityHeader, labels, obj } from './manifest.js';
import type { Authorization, Clause, IpCidr, Match, Rule, StringMatch } from './model.js';
import { type PeerAuthentication, parsePeerAuthentication } from './peer-authentication.js';
import { emptyMatch, validateAuthorization } from './validate.js';

export interface TranslateOptions {
  /** Istio's root namespace: selector-less policies there become GLOBAL. Default `istio-system`. */
  rootNamespace?: string;
  /**
   * istiod's `AMBIENT_ENABLE_DRY_RUN_AUTHORIZATION_POLICY`: forward `istio.io/dry-run: "true"`
   * policies as `dryRun`. Default false, as in istiod: such policies are not sent at all.
   */
  enableDryRun?: boolean;
  /** Namespace for manifests without `metadata.namespace` (kubectl's context default). Default `default`. */
  defaultNamespace?: string;
}

export interface TranslatedPolicy {
  /** The policy ztunnel would receive; undefined when istiod would not send one. */
  policy?: Authorization;
  /** `spec.selector.matchLabels`, set for WORKLOAD_SELECTOR policies. */
  selector?: Record<string, string>;
  warnings: RbacWarning[];
}

const SPEC_KEYS = ['selector', 'targetRef', 'targetRefs', 'rules', 'action', 'provider'];
const RULE_KEYS = ['from', 'to', 'when'];
const SOURCE_KEYS = [
  'principals',
  'notPrincipals',
  'requestPrincipals',
  'notRequestPrincipals',
  'namespaces',
  'notNamespaces',
  'ipBlocks',
  'notIpBlocks',
  'remoteIpBlocks',
  'notRemoteIpBlocks',
  'serviceAccounts',
  'notServiceAccounts',
];
const OPERATION_KEYS = [
  'hosts',
  'notHosts',
  'ports',
  'notPorts',
  'methods',
  'notMethods',
  'paths',
  'notPaths',
];
const L7_SOURCE = [
  'requestPrincipals',
  'notRequestPrincipals',
  'remoteIpBlocks',
  'notRemoteIpBlocks',
];
const L7_OPERATION = ['hosts', 'notHosts', 'methods', 'notMethods', 'paths', 'notPaths'];
/** The `when` keys istiod can express at L4; every other key is L7-only. */
export const L4_WHEN_KEYS = [
  'source.ip',
  'source.namespace',
  'source.principal',
  'destination.ip',
  'destination.port',
] as const;
const TRUE_VALUES = ['1', 't', 'T', 'true', 'TRUE', 'True'];

function strings(value: unknown, path: string): string[] {
  return arr(value, path).map((v, i) => {
    if (typeof v === 'number') return String(v);
    if (typeof v !== 'string') fail(`${path}[${i}]`, 'must be a string');
    return v;
  });
}

/** istiod's wildcard rule: `*` presence, `*x` suffix, `x*` prefix, otherwise exact. */
export function istioStringMatch(v: string): StringMatch {
  if (v === '*') return { kind: 'presence' };
  if (v.startsWith('*')) return { kind: 'suffix', value: v.slice(1) };
  if (v.endsWith('*')) return { kind: 'prefix', value: v.slice(0, -1) };
  return { kind: 'exact', value: v };
}

interface Ctx {
  key: string;
  namespace: string;
  warnings: RbacWarning[];
}

function toIps(values: string[], path: string, ctx: Ctx): IpCidr[] {
  const out: IpCidr[] = [];
  values.forEach((v, i) => {
    const parsed = parseCidr(v);
    if (!parsed) {
      ctx.warnings.push({
        code: 'WARN_RBAC_VALUE_SKIPPED',
        message: `${path}[${i}]: ${JSON.stringify(v)} is not an IP or CIDR; istiod skips it`,
        policy: ctx.key,
        path: `${path}[${i}]`,
      });
      return;
    }
    const slash = v.indexOf('/');
    out.push(
      slash === -1
        ? { address: v, prefixLength: v.includes(':') ? 128 : 32 }
        : { address: v.slice(0, slash), prefixLength: Number(v.slice(slash + 1)) },
    );
  });
  return out;
}

function toPorts(values: string[], path: string, ctx: Ctx): number[] {
  const out: number[] = [];
  values.forEach((v, i) => {
    const n = /^\d+$/.test(v) ? Number(v) : Number.NaN;
    if (!Number.isInteger(n) || n < 1 || n > 65535) {
      ctx.warnings.push({
        code: 'WARN_RBAC_VALUE_SKIPPED',
        message: `${path}[${i}]: ${JSON.stringify(v)} is not a port; istiod skips it`,
        policy: ctx.key,
        path: `${path}[${i}]`,
      });
      return;
    }
    out.push(n);
  });
  return out;
}

function toServiceAccounts(values: string[], ctx: Ctx) {
  return values.map((v) => {
    const slash = v.indexOf('/');
    return slash === -1
      ? { namespace: ctx.namespace, serviceAccount: v }
      : { namespace: v.slice(0, slash), serviceAccount: v.slice(slash + 1) };
  });
}

function isEmptyMatch(m: Match): boolean {
  return Object.values(m).every((list) => (list as unknown[]).length === 0);
}

/** One Istio rule → one model rule, or undefined when an ALLOW rule is dropped for L7 fields. */
function convertRule(
  rule: unknown,
  path: string,
  action: 'ALLOW' | 'DENY',
  ctx: Ctx,
): Rule | undefined {
  const r = obj(rule, path, RULE_KEYS);
  const l7: string[] = [];
  const to = arr(r.to, `${path}.to`).map((t, i) => {
    const tp = `${path}.to[${i}]`;
    const op = obj(obj(t, tp, ['operation']).operation, `${tp}.operation`, OPERATION_KEYS);
    for (const f of L7_OPERATION)
      if (arr(op[f], `${tp}.operation.${f}`).length) l7.push(`${tp}.operation.${f}`);
    return {
      ...emptyMatch(),
      destinationPorts: toPorts(
        strings(op.ports, `${tp}.operation.ports`),
        `${tp}.operation.ports`,
        ctx,
      ),
      notDestinationPorts: toPorts(
        strings(op.notPorts, `${tp}.operation.notPorts`),
        `${tp}.operation.notPorts`,
        ctx,
      ),
    };
  });
  const from = arr(r.from, `${path}.from`).map((f, i) => {
    const fp = `${path}.from[${i}]`;
    const src = obj(obj(f, fp, ['source']).source, `${fp}.source`, SOURCE_KEYS);
    const s = (k: string) => strings(src[k], `${fp}.source.${k}`);
    for (const k of L7_SOURCE) if (s(k).length) l7.push(`${fp}.source.${k}`);
    return {
      ...emptyMatch(),
      sourceIps: toIps(s('ipBlocks'), `${fp}.source.ipBlocks`, ctx),
      notSourceIps: toIps(s('notIpBlocks'), `${fp}.source.notIpBlocks`, ctx),
      namespaces: s('namespaces').map(istioStringMatch),
      notNamespaces: s('notNamespaces').map(istioStringMatch),
      principals: s('principals').map(istioStringMatch),
      notPrincipals: s('notPrincipals').map(istioStringMatch),
      serviceAccounts: toServiceAccounts(s('serviceAccounts'), ctx),
      notServiceAccounts: toServiceAccounts(s('notServiceAccounts'), ctx),
    };
  });
  const when = arr(r.when, `${path}.when`).map((w, i) => {
    const wp = `${path}.when[${i}]`;
    const c = obj(w, wp, ['key', 'values', 'notValues']);
    if (typeof c.key !== 'string' || c.key === '') fail(`${wp}.key`, 'must be a non-empty string');
    const values = strings(c.values, `${wp}.values`);
    const notValues = strings(c.notValues, `${wp}.notValues`);
    const m = emptyMatch();
    switch (c.key) {
      case 'source.ip':
        m.sourceIps = toIps(values, `${wp}.values`, ctx);
        m.notSourceIps = toIps(notValues, `${wp}.notValues`, ctx);
        break;
      case 'source.namespace':
        m.namespaces = values.map(istioStringMatch);
        m.notNamespaces = notValues.map(istioStringMatch);
        break;
      case 'source.principal':
        m.principals = values.map(istioStringMatch);
        m.notPrincipals = notValues.map(istioStringMatch);
        break;
      case 'destination.ip':
        m.destinationIps = toIps(values, `${wp}.values`, ctx);
        m.notDestinationIps = toIps(notValues, `${wp}.notValues`, ctx);
        break;
      case 'destination.port':
        m.destinationPorts = toPorts(values, `${wp}.values`, ctx);
        m.notDestinationPorts = toPorts(notValues, `${wp}.notValues`, ctx);
        break;
      default:
        l7.push(`${wp} (key ${c.key})`);
    }
    return m;
  });

  if (action === 'ALLOW' && l7.length > 0) {
    for (const field of l7) {
      ctx.warnings.push({
        code: 'WARN_RBAC_L7_RULE_DROPPED',
        message: `${field} is L7-only; ztunnel cannot check it, so istiod drops this ALLOW rule (it allows nothing)`,
        policy: ctx.key,
        path: field,
      });
    }
    return undefined;
  }
  for (const field of l7) {
    ctx.warnings.push({
      code: 'WARN_RBAC_L7_FIELD_IGNORED',
      message: `${field} is L7-only; istiod omits it, so this DENY rule applies to all traffic its L4 fields match`,
      policy: ctx.key,
      path: field,
    });
  }
  const clauses: Clause[] = [];
  if (to.length > 0) clauses.push({ matches: to });
  if (from.length > 0) clauses.push({ matches: from });
  for (const m of when) clauses.push({ matches: [m] });
  if (l7.length > 0 && clauses.some((c) => c.matches.every(isEmptyMatch))) {
    ctx.warnings.push({
      code: 'WARN_RBAC_DENY_RULE_NEVER_MATCHES',
      message: `${path}: with its L7 fields omitted this DENY rule is left with only empty matches and never fires`,
      policy: ctx.key,
      path,
    });
  }
  return { clauses };
}

/**
 * Translates one Kubernetes `AuthorizationPolicy` (security.istio.io/v1 or v1beta1) into the
 * policy ztunnel receives from istiod (§5.5). Throws `ERR_RBAC_INVALID_MANIFEST` for malformed
 * manifests and `ERR_RBAC_UNSUPPORTED_ACTION` for AUDIT/CUSTOM.
 */
export function translateAuthorizationPolicy(
  manifest: unknown,
  options: TranslateOptions = {},
): TranslatedPolicy {
  const rootNamespace = options.rootNamespace ?? 'istio-system';
  const header = istioSecurityHeader(manifest, 'AuthorizationPolicy', options.defaultNamespace);
  const { namespace, metadata: meta } = header;
  const key = `${namespace}/${header.name}`;
  const at = `AuthorizationPolicy ${key}`;
  const spec = obj(header.spec, `${at}: spec`, SPEC_KEYS);
  const warnings: RbacWarning[] = [];

  const targetRefs = arr(spec.targetRefs, `${at}: spec.targetRefs`);
  if (spec.targetRef !== undefined && spec.targetRef !== null) targetRefs.push(spec.targetRef);
  if (targetRefs.length > 0) {
    warnings.push({
      code: 'WARN_RBAC_TARGET_REF',
      message: `${at} has targetRef(s): it applies to waypoints/gateways and istiod does not send it to ztunnel`,
      policy: key,
    });
    return { warnings };
  }

  const annotations = obj(meta.annotations, 'metadata.annotations');
  const dryRunValue = annotations['istio.io/dry-run'];
  const dryRun = typeof dryRunValue === 'string' && TRUE_VALUES.includes(dryRunValue);

  const actionText = spec.action ?? 'ALLOW';
  if (actionText === 'AUDIT' || actionText === 'CUSTOM') {
    throw new RbacError(
      'ERR_RBAC_UNSUPPORTED_ACTION',
      `${at}: ztunnel does not support the ${actionText} action`,
    );
  }
  if (actionText !== 'ALLOW' && actionText !== 'DENY') {
    fail(
      `${at}: spec.action`,
      `must be ALLOW, DENY, AUDIT or CUSTOM, got ${JSON.stringify(actionText)}`,
    );
  }
  const action: 'ALLOW' | 'DENY' = actionText;

  if (dryRun && !options.enableDryRun) {
    warnings.push({
      code: 'WARN_RBAC_DRY_RUN_NOT_SENT',
      message: `${at} is annotated istio.io/dry-run and dry-run forwarding is off (AMBIENT_ENABLE_DRY_RUN_AUTHORIZATION_POLICY=false), so istiod does not send it`,
      policy: key,
    });
    return { warnings };
  }

  const selectorObj = obj(spec.selector, `${at}: spec.selector`, ['matchLabels']);
  const selector = labels(selectorObj.matchLabels, `${at}: spec.selector.matchLabels`);
  const hasSelector = Object.keys(selector).length > 0;
  const scope = hasSelector
    ? 'WORKLOAD_SELECTOR'
    : namespace === rootNamespace
      ? 'GLOBAL'
      : 'NAMESPACE';

  const ctx: Ctx = { key, namespace, warnings };
  const rules = arr(spec.rules, `${at}: spec.rules`)
    .map((r, i) => convertRule(r, `${at}: spec.rules[${i}]`, action, ctx))
    .filter((r): r is Rule => r !== undefined);
  const { policy, warnings: modelWarnings } = validateAuthorization({
    name: header.name,
    namespace,
    scope,
    action,
    dryRun,
    rules,
  });
  return {
    policy,
    ...(hasSelector ? { selector } : {}),
    warnings: [...warnings, ...modelWarnings],
  };
}

export interface LoadedPolicies {
  /** Every policy ztunnel would hold, in document order. */
  policies: Authorization[];
  /** Selector of each WORKLOAD_SELECTOR policy translated from a manifest, by `ns/name`. */
  selectors: Map<string, Record<string, string>>;
  /** `PeerAuthentication` documents; resolve them per workload with `resolveWorkloadMtls`. */
  peerAuthentications: PeerAuthentication[];
  warnings: RbacWarning[];
}

/**
 * Reads YAML text with any number of documents: `AuthorizationPolicy` manifests (also inside a
 * `kind: List`), `PeerAuthentication`s, and ztunnel local configs (a mapping with `policies`
 * and no `kind`). Other
 * documents are ignored with `WARN_RBAC_NOT_A_POLICY`.
 */
export function loadPolicyDocuments(
  text: string,
  options: TranslateOptions & { source?: string } = {},
): LoadedPolicies {
  const source = options.source ?? 'input';
  const out: LoadedPolicies = {
    policies: [],
    selectors: new Map(),
    peerAuthentications: [],
    warnings: [],
  };
  const visit = (doc: unknown, where: string): void => {
    if (!isObject(doc)) {
      if (Array.isArray(doc)) {
        // A bare list is the local-config `policies` list.
        doc.forEach((p, i) => {
          const v = policyFromLocalConfig(p, `${where}[${i}]`);
          out.policies.push(v.policy);
          out.warnings.push(...v.warnings);
        });
        return;
      }
      fail(where, 'a document must be a mapping');
    }
    if (doc.kind === 'List') {
      arr(doc.items, `${where}.items`).forEach((item, i) => {
        visit(item, `${where}.items[${i}]`);
      });
      return;
    }
    if (doc.kind === undefined && 'policies' in doc) {
      visit(arr(doc.policies, `${where}.policies`), `${where}.policies`);
      return;
    }
    if (doc.kind === 'PeerAuthentication') {
      out.peerAuthentications.push(parsePeerAuthentication(doc, options));
      return;
    }
    if (doc.kind !== 'AuthorizationPolicy') {
      out.warnings.push({
        code: 'WARN_RBAC_NOT_A_POLICY',
        message: `${where}: ${String(doc.kind ?? 'untyped document')} is not an AuthorizationPolicy; ignored`,
        path: where,
      });
      return;
    }
    const t = translateAuthorizationPolicy(doc, options);
    out.warnings.push(...t.warnings);
    if (t.policy) {
      out.policies.push(t.policy);
      if (t.selector) out.selectors.set(`${t.policy.namespace}/${t.policy.name}`, t.selector);
    }
  };
  parseYamlDocuments(text, source, 'ERR_RBAC_INVALID_MANIFEST').forEach((doc, i) => {
    visit(doc, `${source} document ${i + 1}`);
  });
  return out;
}
