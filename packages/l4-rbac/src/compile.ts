import { RbacError } from './errors.js';
import { cidrContains, makeCidr, type ParsedCidr } from './ip.js';
import type { Authorization, IpCidr, Match, ServiceAccountMatch, StringMatch } from './model.js';
import type { MatchContext } from './request.js';

/** A validated policy turned into flat matcher data; built once per policy version. */
export interface CompiledPolicy {
  /** `namespace/name`. */
  readonly key: string;
  readonly policy: Authorization;
  /** True when any rule holds for the connection (§5.3). */
  matches(ctx: MatchContext): boolean;
  /**
   * A necessary condition the store indexes on: the policy can only match a peer whose
   * principal (or namespace) is one of `values`. Absent when no such exact condition exists;
   * `values` is empty when the policy can never match.
   */
  readonly guard?: PolicyGuard;
}

export interface PolicyGuard {
  on: 'principal' | 'namespace';
  values: readonly string[];
}

export function stringMatches(m: StringMatch, value: string | undefined): boolean {
  // No identity means no value at all: every matcher is false, presence included.
  if (value === undefined) return false;
  switch (m.kind) {
    case 'exact':
      return value === m.value;
    case 'prefix':
      return value.startsWith(m.value);
    case 'suffix':
      return value.endsWith(m.value);
    case 'presence':
      return value.length > 0;
  }
}

/** A list of string matchers, ORed: exact values hashed, prefixes and suffixes scanned. */
class StringSet {
  readonly exact: Set<string> | undefined;
  readonly prefixes: string[] = [];
  readonly suffixes: string[] = [];
  readonly presence: boolean;

  constructor(list: readonly StringMatch[]) {
    const exact = new Set<string>();
    let presence = false;
    for (const m of list) {
      if (m.kind === 'exact') exact.add(m.value);
      else if (m.kind === 'prefix') this.prefixes.push(m.value);
      else if (m.kind === 'suffix') this.suffixes.push(m.value);
      else presence = true;
    }
    this.exact = exact.size > 0 ? exact : undefined;
    this.presence = presence;
  }

  any(value: string | undefined): boolean {
    if (value === undefined) return false;
    if (this.presence && value.length > 0) return true;
    if (this.exact?.has(value)) return true;
    for (const p of this.prefixes) if (value.startsWith(p)) return true;
    for (const s of this.suffixes) if (value.endsWith(s)) return true;
    return false;
  }
}

function anyCidr(list: readonly ParsedCidr[], ip: MatchContext['sourceIp']): boolean {
  for (const c of list) if (cidrContains(c, ip)) return true;
  return false;
}

/** One Match as flat data; an absent list imposes nothing (§5.3 field semantics). */
interface CompiledMatch {
  namespaces?: StringSet;
  notNamespaces?: StringSet;
  principals?: StringSet;
  notPrincipals?: StringSet;
  /** `namespace/serviceAccount` pairs. */
  serviceAccounts?: Set<string>;
  notServiceAccounts?: Set<string>;
  sourceIps?: ParsedCidr[];
  notSourceIps?: ParsedCidr[];
  destinationIps?: ParsedCidr[];
  notDestinationIps?: ParsedCidr[];
  destinationPorts?: Set<number>;
  notDestinationPorts?: Set<number>;
}

function strings(list: readonly StringMatch[]): StringSet | undefined {
  return list.length ? new StringSet(list) : undefined;
}

function accounts(list: readonly ServiceAccountMatch[]): Set<string> | undefined {
  return list.length ? new Set(list.map((s) => `${s.namespace}/${s.serviceAccount}`)) : undefined;
}

function cidrs(list: readonly IpCidr[]): ParsedCidr[] | undefined {
  if (!list.length) return undefined;
  return list.map((c) => {
    const parsed = makeCidr(c.address, c.prefixLength);
    if (!parsed) {
      throw new RbacError(
        'ERR_RBAC_INVALID_CIDR',
        `${JSON.stringify(c.address)}/${c.prefixLength} is not a valid CIDR (validate policies first)`,
      );
    }
    return parsed;
  });
}

function ports(list: readonly number[]): Set<number> | undefined {
  return list.length ? new Set(list) : undefined;
}

/** Flat form of a match; `undefined` when every field is empty (such a match never matches). */
function compileMatch(m: Match): CompiledMatch | undefined {
  const c: CompiledMatch = {
    namespaces: strings(m.namespaces),
    notNamespaces: strings(m.notNamespaces),
    principals: strings(m.principals),
    notPrincipals: strings(m.notPrincipals),
    serviceAccounts: accounts(m.serviceAccounts),
    notServiceAccounts: accounts(m.notServiceAccounts),
    sourceIps: cidrs(m.sourceIps),
    notSourceIps: cidrs(m.notSourceIps),
    destinationIps: cidrs(m.destinationIps),
    notDestinationIps: cidrs(m.notDestinationIps),
    destinationPorts: ports(m.destinationPorts),
    notDestinationPorts: ports(m.notDestinationPorts),
  };
  return Object.values(c).some((v) => v !== undefined) ? c : undefined;
}

/** Every present field holds: positive → some value matches; negative → none does. */
function matchHolds(m: CompiledMatch, ctx: MatchContext): boolean {
  if (m.principals && !m.principals.any(ctx.principal)) return false;
  if (m.notPrincipals?.any(ctx.principal)) return false;
  if (m.namespaces && !m.namespaces.any(ctx.namespace)) return false;
  if (m.notNamespaces?.any(ctx.namespace)) return false;
  if (m.serviceAccounts || m.notServiceAccounts) {
    const sa = ctx.principal === undefined ? undefined : `${ctx.namespace}/${ctx.serviceAccount}`;
    const hit = sa !== undefined && ctx.namespace !== undefined;
    if (m.serviceAccounts && !(hit && m.serviceAccounts.has(sa))) return false;
    if (m.notServiceAccounts && hit && m.notServiceAccounts.has(sa)) return false;
  }
  if (m.destinationPorts && !m.destinationPorts.has(ctx.destinationPort)) return false;
  if (m.notDestinationPorts?.has(ctx.destinationPort)) return false;
  if (m.sourceIps && !anyCidr(m.sourceIps, ctx.sourceIp)) return false;
  if (m.notSourceIps && anyCidr(m.notSourceIps, ctx.sourceIp)) return false;
  if (m.destinationIps && !anyCidr(m.destinationIps, ctx.destinationIp)) return false;
  if (m.notDestinationIps && anyCidr(m.notDestinationIps, ctx.destinationIp)) return false;
  return true;
}

/**
 * A clause: `null` when it has no matches (always true); otherwise its non-empty matches,
 * possibly none (then it is false: a clause whose only matches are empty never holds).
 */
type CompiledClause = CompiledMatch[] | null;

function clauseHolds(clause: CompiledClause, ctx: MatchContext): boolean {
  if (clause === null) return true;
  for (const m of clause) if (matchHolds(m, ctx)) return true;
  return false;
}

/** A rule holds when all its clauses hold; zero clauses → always. */
function ruleHolds(clauses: readonly CompiledClause[], ctx: MatchContext): boolean {
  for (const c of clauses) if (!clauseHolds(c, ctx)) return false;
  return true;
}

const NEVER = 'never';

/**
 * The exact values one clause allows for an attribute: every non-empty match must list only
 * exact values for it. `undefined` = unconstrained; NEVER = the clause can never hold.
 */
function clauseGuard(
  clause: CompiledClause,
  on: PolicyGuard['on'],
): Set<string> | undefined | typeof NEVER {
  if (clause === null) return undefined;
  if (clause.length === 0) return NEVER;
  const values = new Set<string>();
  for (const m of clause) {
    const list = on === 'principal' ? m.principals : m.namespaces;
    if (!list?.exact || list.presence || list.prefixes.length || list.suffixes.length) {
      return undefined;
    }
    for (const v of list.exact) values.add(v);
  }
  return values;
}

function policyGuard(rules: CompiledClause[][], on: PolicyGuard['on']): PolicyGuard | undefined {
  const values = new Set<string>();
  for (const rule of rules) {
    let ruleValues: Set<string> | undefined;
    let never = false;
    for (const clause of rule) {
      const g = clauseGuard(clause, on);
      if (g === NEVER) {
        never = true;
        break;
      }
      // The rule needs every clause, so one constrained clause bounds the whole rule.
      if (g && !ruleValues) ruleValues = g;
    }
    if (never) continue;
    if (!ruleValues) return undefined;
    for (const v of ruleValues) values.add(v);
  }
  return { on, values: [...values] };
}

class Compiled implements CompiledPolicy {
  readonly key: string;
  readonly policy: Authorization;
  readonly guard?: PolicyGuard;
  readonly #rules: CompiledClause[][];

  constructor(policy: Authorization) {
    this.policy = policy;
    this.key = `${policy.namespace}/${policy.name}`;
    this.#rules = policy.rules.map((rule) =>
      rule.clauses.map((clause): CompiledClause => {
        if (clause.matches.length === 0) return null;
        return clause.matches.map(compileMatch).filter((m): m is CompiledMatch => m !== undefined);
      }),
    );
    const guard = policyGuard(this.#rules, 'principal') ?? policyGuard(this.#rules, 'namespace');
    if (guard) this.guard = guard;
  }

  /** Rules ORed; zero rules → never. */
  matches(ctx: MatchContext): boolean {
    for (const r of this.#rules) if (ruleHolds(r, ctx)) return true;
    return false;
  }
}

/**
 * Compiles a policy that has already been validated. Rules OR, clauses AND, matches OR;
 * zero rules → never, zero clauses → always, zero matches → true, empty matches skipped.
 */
export function compilePolicy(policy: Authorization): CompiledPolicy {
  return new Compiled(policy);
}
