import { isMap, isScalar, isSeq, parseAllDocuments, type Tags } from 'yaml';
import { RbacError } from './errors.js';
import { parseCidr } from './ip.js';
import type { Authorization, IpCidr, StringMatch } from './model.js';
import { MATCH_FIELDS, type Validated, validateAuthorization } from './validate.js';

type Variant = 'Exact' | 'Prefix' | 'Suffix' | 'Presence';
const VARIANTS: Record<Variant, StringMatch['kind']> = {
  Exact: 'exact',
  Prefix: 'prefix',
  Suffix: 'suffix',
  Presence: 'presence',
};

/** A string match read from a YAML tag (`!Exact foo`); produced by {@link localConfigYamlTags}. */
export class TaggedStringMatch {
  constructor(
    readonly variant: Variant,
    readonly value: unknown,
  ) {}
}

/**
 * Custom tags for the `yaml` package that read ztunnel's string matchers (`!Exact foo`,
 * `!Prefix foo`, `!Suffix foo`, `!Presence`, also `!Presence []`/`!Presence {}`). Pass them as
 * `customTags` when parsing a whole local config file, then hand each `policies[]` entry to
 * {@link policyFromLocalConfig}.
 */
export const localConfigYamlTags: Tags = [
  ...(['Exact', 'Prefix', 'Suffix', 'Presence'] as const).map((variant) => ({
    tag: `!${variant}`,
    resolve: (value: string) => new TaggedStringMatch(variant, value),
  })),
  {
    tag: '!Presence',
    collection: 'seq' as const,
    resolve: (seq: unknown) =>
      new TaggedStringMatch('Presence', isSeq(seq) && seq.items.length === 0 ? '' : seq),
  },
  {
    tag: '!Presence',
    collection: 'map' as const,
    resolve: (map: unknown) =>
      new TaggedStringMatch('Presence', isMap(map) && map.items.length === 0 ? '' : map),
  },
];

function fail(path: string, message: string): never {
  throw new RbacError('ERR_RBAC_INVALID_LOCAL_CONFIG', `${path}: ${message}`);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return (
    typeof value === 'object' &&
    value !== null &&
    !Array.isArray(value) &&
    !(value instanceof TaggedStringMatch)
  );
}

function keysOf(value: unknown, path: string, allowed: readonly string[]): Record<string, unknown> {
  if (!isObject(value)) fail(path, 'must be a mapping');
  for (const k of Object.keys(value)) {
    if (!allowed.includes(k))
      fail(`${path}.${k}`, `unknown field (expected one of ${allowed.join(', ')})`);
  }
  return value;
}

function seq(value: unknown, path: string): unknown[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) fail(path, 'must be a sequence');
  return value;
}

function isEmptyValue(v: unknown): boolean {
  return (
    v === '' ||
    v === null ||
    v === undefined ||
    (Array.isArray(v) && v.length === 0) ||
    (isObject(v) && Object.keys(v).length === 0)
  );
}

function stringMatch(value: unknown, path: string): StringMatch {
  let variant: string;
  let inner: unknown;
  if (value instanceof TaggedStringMatch) {
    variant = value.variant;
    inner = value.value;
  } else if (isObject(value) && Object.keys(value).length === 1) {
    // The single-key-map form `{Exact: foo}` (serde's externally tagged enum as a map).
    variant = Object.keys(value)[0]!;
    inner = value[variant];
  } else {
    fail(
      path,
      `expected a tagged string match (!Exact, !Prefix, !Suffix, !Presence) or {Exact: …}, got ${JSON.stringify(value)}`,
    );
  }
  if (!(variant in VARIANTS)) fail(path, `unknown string match variant ${JSON.stringify(variant)}`);
  const kind = VARIANTS[variant as Variant];
  if (kind === 'presence') {
    if (!isEmptyValue(inner)) fail(path, 'Presence takes no value');
    return { kind };
  }
  if (typeof inner !== 'string') fail(path, `${variant} needs a string`);
  return { kind, value: inner };
}

function cidr(value: unknown, path: string): IpCidr {
  const parsed = typeof value === 'string' ? parseCidr(value) : undefined;
  if (!parsed || typeof value !== 'string') {
    throw new RbacError(
      'ERR_RBAC_INVALID_CIDR',
      `${path}: ${JSON.stringify(value)} is not an IP address or CIDR (e.g. 10.0.0.0/8, fd00::/64)`,
    );
  }
  const slash = value.indexOf('/');
  return slash === -1
    ? { address: value, prefixLength: parsed.v === 4 && !value.includes(':') ? 32 : 128 }
    : { address: value.slice(0, slash), prefixLength: Number(value.slice(slash + 1)) };
}

const POLICY_KEYS = ['name', 'namespace', 'scope', 'action', 'dryRun', 'rules'] as const;
const SCOPES = {
  Global: 'GLOBAL',
  Namespace: 'NAMESPACE',
  WorkloadSelector: 'WORKLOAD_SELECTOR',
} as const;
const ACTIONS = { Allow: 'ALLOW', Deny: 'DENY' } as const;

function convertMatch(value: unknown, path: string): Record<string, unknown> {
  const m = keysOf(value, path, MATCH_FIELDS);
  const out: Record<string, unknown> = {};
  for (const f of ['namespaces', 'notNamespaces', 'principals', 'notPrincipals'] as const) {
    out[f] = seq(m[f], `${path}.${f}`).map((s, i) => stringMatch(s, `${path}.${f}[${i}]`));
  }
  for (const f of ['sourceIps', 'notSourceIps', 'destinationIps', 'notDestinationIps'] as const) {
    out[f] = seq(m[f], `${path}.${f}`).map((s, i) => cidr(s, `${path}.${f}[${i}]`));
  }
  for (const f of ['destinationPorts', 'notDestinationPorts'] as const) {
    out[f] = seq(m[f], `${path}.${f}`);
  }
  for (const f of ['serviceAccounts', 'notServiceAccounts'] as const) {
    out[f] = seq(m[f], `${path}.${f}`).map((s, i) => {
      const sa = keysOf(s, `${path}.${f}[${i}]`, ['namespace', 'serviceAccount']);
      if (typeof sa.namespace !== 'string' || typeof sa.serviceAccount !== 'string') {
        fail(`${path}.${f}[${i}]`, 'needs string namespace and serviceAccount');
      }
      return { namespace: sa.namespace, serviceAccount: sa.serviceAccount };
    });
  }
  return out;
}

/**
 * Converts one `policies[]` entry of ztunnel's local config (already parsed from YAML with
 * {@link localConfigYamlTags}, or plain objects using the `{Exact: foo}` map form) into the model.
 * Unknown keys are errors and `dryRun` must be present, as in ztunnel.
 */
export function policyFromLocalConfig(value: unknown, path = 'policies[0]'): Validated {
  const p = keysOf(value, path, POLICY_KEYS);
  for (const k of ['name', 'namespace'] as const) {
    if (typeof p[k] !== 'string') fail(`${path}.${k}`, 'is required and must be a string');
  }
  if (!(typeof p.scope === 'string' && p.scope in SCOPES)) {
    fail(
      `${path}.scope`,
      `must be one of Global, Namespace, WorkloadSelector, got ${JSON.stringify(p.scope)}`,
    );
  }
  if (!(typeof p.action === 'string' && p.action in ACTIONS)) {
    fail(`${path}.action`, `must be Allow or Deny, got ${JSON.stringify(p.action)}`);
  }
  if (!('dryRun' in p)) fail(`${path}.dryRun`, 'is required (ztunnel has no default for it)');
  if (typeof p.dryRun !== 'boolean') fail(`${path}.dryRun`, 'must be true or false');
  const rules = seq(p.rules, `${path}.rules`).map((rule, r) => ({
    clauses: seq(rule, `${path}.rules[${r}]`).map((clause, c) => ({
      matches: seq(clause, `${path}.rules[${r}][${c}]`).map((m, i) =>
        convertMatch(m, `${path}.rules[${r}][${c}][${i}]`),
      ),
    })),
  }));
  const model = {
    name: p.name,
    namespace: p.namespace,
    scope: SCOPES[p.scope as keyof typeof SCOPES],
    action: ACTIONS[p.action as keyof typeof ACTIONS],
    dryRun: p.dryRun,
    rules,
  };
  try {
    return validateAuthorization(model);
  } catch (err) {
    if (err instanceof RbacError && err.code === 'ERR_RBAC_INVALID_POLICY') {
      throw new RbacError('ERR_RBAC_INVALID_LOCAL_CONFIG', `${path}: ${err.message}`, {
        cause: err,
      });
    }
    throw err;
  }
}

/** Parses YAML text with the string-match tags; YAML errors and unknown tags are errors. */
export function parseYamlDocuments(
  text: string,
  source = 'input',
  code:
    | 'ERR_RBAC_INVALID_LOCAL_CONFIG'
    | 'ERR_RBAC_INVALID_MANIFEST' = 'ERR_RBAC_INVALID_LOCAL_CONFIG',
): unknown[] {
  const docs = parseAllDocuments(text, { customTags: localConfigYamlTags, uniqueKeys: true });
  const list = Array.isArray(docs) ? docs : [docs];
  const out: unknown[] = [];
  for (const doc of list) {
    const problem = doc.errors[0] ?? doc.warnings.find((w) => w.code === 'TAG_RESOLVE_FAILED');
    if (problem) {
      throw new RbacError(code, `${source}: ${problem.message.split('\n')[0]}`);
    }
    if (doc.contents === null || (isScalar(doc.contents) && doc.contents.value === null)) continue;
    out.push(doc.toJS({ maxAliasCount: 100 }));
  }
  return out;
}

/**
 * Reads the policies of a local config: a YAML document with a top-level `policies` list
 * (other top-level keys are left to the caller), or a bare list of policies.
 */
export function parseLocalConfigPolicies(
  text: string,
  source = 'local config',
): {
  policies: Authorization[];
  warnings: Validated['warnings'];
} {
  const policies: Authorization[] = [];
  const warnings: Validated['warnings'] = [];
  for (const doc of parseYamlDocuments(text, source)) {
    const list = Array.isArray(doc) ? doc : isObject(doc) ? doc.policies : undefined;
    seq(list, `${source}: policies`).forEach((p, i) => {
      const v = policyFromLocalConfig(p, `${source}: policies[${i}]`);
      policies.push(v.policy);
      warnings.push(...v.warnings);
    });
  }
  return { policies, warnings };
}
