import { RbacError, type RbacWarning } from './errors.js';
import { makeCidr } from './ip.js';
import type {
  Authorization,
  IpCidr,
  Match,
  PolicyAction,
  PolicyScope,
  ServiceAccountMatch,
  StringMatch,
} from './model.js';

export interface Validated {
  /** A fresh, normalised copy: missing match lists become `[]`, CIDR host bits are kept as given. */
  policy: Authorization;
  warnings: RbacWarning[];
}

const SCOPES: readonly PolicyScope[] = ['GLOBAL', 'NAMESPACE', 'WORKLOAD_SELECTOR'];
const ACTIONS: readonly PolicyAction[] = ['ALLOW', 'DENY'];
const POLICY_KEYS = new Set(['name', 'namespace', 'scope', 'action', 'dryRun', 'rules']);
const STRING_FIELDS = ['namespaces', 'notNamespaces', 'principals', 'notPrincipals'] as const;
const CIDR_FIELDS = ['sourceIps', 'notSourceIps', 'destinationIps', 'notDestinationIps'] as const;
const PORT_FIELDS = ['destinationPorts', 'notDestinationPorts'] as const;
const SA_FIELDS = ['serviceAccounts', 'notServiceAccounts'] as const;
export const MATCH_FIELDS = [...STRING_FIELDS, ...CIDR_FIELDS, ...PORT_FIELDS, ...SA_FIELDS];
const MATCH_KEYS = new Set<string>(MATCH_FIELDS);
const CIDR_KEYS = new Set(['address', 'prefixLength']);
const SA_KEYS = new Set(['namespace', 'serviceAccount']);
const PRESENCE_KEYS = new Set(['kind']);
const VALUE_KEYS = new Set(['kind', 'value']);
const RULE_KEYS = new Set(['clauses']);
const CLAUSE_KEYS = new Set(['matches']);

function fail(path: string, message: string): never {
  throw new RbacError('ERR_RBAC_INVALID_POLICY', `${path}: ${message}`);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function objectWith(value: unknown, path: string, keys: Set<string>): Record<string, unknown> {
  if (!isObject(value)) fail(path, 'must be an object');
  for (const k of Object.keys(value)) {
    if (!keys.has(k)) fail(`${path}.${k}`, 'unknown field');
  }
  return value;
}

function list(value: unknown, path: string): unknown[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) fail(path, 'must be an array');
  return value;
}

/** Validates one port (shared by every input form). */
export function checkPort(value: unknown, path: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > 65535) {
    throw new RbacError(
      'ERR_RBAC_INVALID_PORT',
      `${path}: port ${JSON.stringify(value)} is not an integer from 1 to 65535`,
    );
  }
  return value;
}

/** Validates one CIDR in model form (shared by every input form). */
export function checkCidr(value: unknown, path: string): IpCidr {
  const v = objectWith(value, path, CIDR_KEYS);
  const address = v.address;
  const prefixLength = v.prefixLength;
  if (
    typeof address !== 'string' ||
    typeof prefixLength !== 'number' ||
    !makeCidr(address, prefixLength)
  ) {
    throw new RbacError(
      'ERR_RBAC_INVALID_CIDR',
      `${path}: ${JSON.stringify(address)}/${JSON.stringify(prefixLength)} is not a valid IPv4 (/0-32) or IPv6 (/0-128) CIDR`,
    );
  }
  return { address, prefixLength };
}

function checkString(
  value: unknown,
  path: string,
  warnings: RbacWarning[],
  policy: string,
): StringMatch {
  if (!isObject(value) || typeof value.kind !== 'string') {
    fail(path, 'must be a string match {kind, value}');
  }
  if (value.kind === 'presence') {
    objectWith(value, path, PRESENCE_KEYS);
    return { kind: 'presence' };
  }
  if (value.kind !== 'exact' && value.kind !== 'prefix' && value.kind !== 'suffix') {
    fail(`${path}.kind`, `unknown string match kind ${JSON.stringify(value.kind)}`);
  }
  objectWith(value, path, VALUE_KEYS);
  if (typeof value.value !== 'string') fail(`${path}.value`, 'must be a string');
  if (value.value === '' && value.kind === 'exact') {
    warnings.push({
      code: 'WARN_RBAC_EMPTY_STRING',
      message: `${path}: exact match on "" can never match a peer identity`,
      policy,
      path,
    });
  }
  return { kind: value.kind, value: value.value };
}

function checkServiceAccount(
  value: unknown,
  path: string,
  warnings: RbacWarning[],
  policy: string,
): ServiceAccountMatch {
  const v = objectWith(value, path, SA_KEYS);
  if (typeof v.namespace !== 'string') fail(`${path}.namespace`, 'must be a string');
  if (typeof v.serviceAccount !== 'string') fail(`${path}.serviceAccount`, 'must be a string');
  if (v.namespace === '' || v.serviceAccount === '') {
    warnings.push({
      code: 'WARN_RBAC_EMPTY_STRING',
      message: `${path}: service account match with an empty namespace or name never matches`,
      policy,
      path,
    });
  }
  return { namespace: v.namespace, serviceAccount: v.serviceAccount };
}

function checkMatch(value: unknown, path: string, warnings: RbacWarning[], key: string): Match {
  const v = objectWith(value, path, MATCH_KEYS);
  const out = {} as Match;
  for (const f of STRING_FIELDS) {
    out[f] = list(v[f], `${path}.${f}`).map((s, i) =>
      checkString(s, `${path}.${f}[${i}]`, warnings, key),
    );
  }
  for (const f of CIDR_FIELDS) {
    out[f] = list(v[f], `${path}.${f}`).map((c, i) => checkCidr(c, `${path}.${f}[${i}]`));
  }
  for (const f of PORT_FIELDS) {
    out[f] = list(v[f], `${path}.${f}`).map((p, i) => checkPort(p, `${path}.${f}[${i}]`));
  }
  for (const f of SA_FIELDS) {
    out[f] = list(v[f], `${path}.${f}`).map((s, i) =>
      checkServiceAccount(s, `${path}.${f}[${i}]`, warnings, key),
    );
  }
  return out;
}

/**
 * Validates a policy in the model form (what `@mesh/xds-client` decodes) and returns a
 * normalised copy. Throws {@link RbacError} (`ERR_RBAC_INVALID_POLICY`, `_CIDR`, `_PORT`) naming
 * the path of the first problem; unknown fields are errors.
 */
export function validateAuthorization(input: unknown): Validated {
  const v = objectWith(input, 'policy', POLICY_KEYS);
  if (typeof v.name !== 'string' || v.name === '')
    fail('policy.name', 'must be a non-empty string');
  if (typeof v.namespace !== 'string' || v.namespace === '') {
    fail('policy.namespace', 'must be a non-empty string');
  }
  const key = `${v.namespace}/${v.name}`;
  const at = `policy ${key}`;
  if (!SCOPES.includes(v.scope as PolicyScope)) {
    fail(`${at}: scope`, `must be one of ${SCOPES.join(', ')}, got ${JSON.stringify(v.scope)}`);
  }
  if (!ACTIONS.includes(v.action as PolicyAction)) {
    fail(
      `${at}: action`,
      `must be one of ${ACTIONS.join(', ')}, got ${JSON.stringify(v.action)} (AUDIT and CUSTOM never reach ztunnel)`,
    );
  }
  if (typeof v.dryRun !== 'boolean') fail(`${at}: dryRun`, 'must be a boolean');
  const warnings: RbacWarning[] = [];
  const rules = list(v.rules, `${at}: rules`).map((rule, r) => {
    const rp = `${at}: rules[${r}]`;
    const rv = objectWith(rule, rp, RULE_KEYS);
    return {
      clauses: list(rv.clauses, `${rp}.clauses`).map((clause, c) => {
        const cp = `${rp}.clauses[${c}]`;
        const cv = objectWith(clause, cp, CLAUSE_KEYS);
        return {
          matches: list(cv.matches, `${cp}.matches`).map((m, i) =>
            checkMatch(m, `${cp}.matches[${i}]`, warnings, key),
          ),
        };
      }),
    };
  });
  return {
    policy: {
      name: v.name,
      namespace: v.namespace,
      scope: v.scope as PolicyScope,
      action: v.action as PolicyAction,
      dryRun: v.dryRun,
      rules,
    },
    warnings,
  };
}

/** An empty match, handy for building policies by hand: spread it and set the fields you need. */
export function emptyMatch(): Match {
  const m = {} as Match;
  for (const f of MATCH_FIELDS) (m as unknown as Record<string, unknown[]>)[f] = [];
  return m;
}
