import { cidrContains, makeCidr, type ParsedCidr } from './ip.js';
import type { Authorization, IpCidr, Match, ServiceAccountMatch, StringMatch } from './model.js';
import type { MatchContext } from './request.js';

type Test = (ctx: MatchContext) => boolean;

/** A validated policy turned into a predicate tree; built once per policy version. */
export interface CompiledPolicy {
  /** `namespace/name`. */
  readonly key: string;
  readonly policy: Authorization;
  /** True when any rule holds for the connection (§5.3). */
  matches(ctx: MatchContext): boolean;
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

/** Positive list empty → true, else any value; negative list empty → true, else none. */
function field<T>(
  positive: readonly T[],
  negative: readonly T[],
  test: (value: T, ctx: MatchContext) => boolean,
): Test | undefined {
  if (positive.length === 0 && negative.length === 0) return undefined;
  if (negative.length === 0) return (ctx) => positive.some((v) => test(v, ctx));
  if (positive.length === 0) return (ctx) => !negative.some((v) => test(v, ctx));
  return (ctx) => positive.some((v) => test(v, ctx)) && !negative.some((v) => test(v, ctx));
}

function cidrs(list: readonly IpCidr[]): ParsedCidr[] {
  return list.map((c) => {
    const parsed = makeCidr(c.address, c.prefixLength);
    if (!parsed) throw new TypeError(`unvalidated CIDR ${c.address}/${c.prefixLength}`);
    return parsed;
  });
}

const saMatches = (sa: ServiceAccountMatch, ctx: MatchContext): boolean =>
  ctx.principal !== undefined &&
  ctx.namespace === sa.namespace &&
  ctx.serviceAccount === sa.serviceAccount;

/** The fields of one match ANDed; `undefined` when every field is empty (never matches). */
export function compileMatch(m: Match): Test | undefined {
  const tests = [
    field(m.namespaces, m.notNamespaces, (s, ctx) => stringMatches(s, ctx.namespace)),
    field(m.principals, m.notPrincipals, (s, ctx) => stringMatches(s, ctx.principal)),
    field(m.serviceAccounts, m.notServiceAccounts, saMatches),
    field(cidrs(m.sourceIps), cidrs(m.notSourceIps), (c, ctx) => cidrContains(c, ctx.sourceIp)),
    field(cidrs(m.destinationIps), cidrs(m.notDestinationIps), (c, ctx) =>
      cidrContains(c, ctx.destinationIp),
    ),
    field(m.destinationPorts, m.notDestinationPorts, (p, ctx) => p === ctx.destinationPort),
  ].filter((t): t is Test => t !== undefined);
  if (tests.length === 0) return undefined;
  if (tests.length === 1) return tests[0];
  return (ctx) => tests.every((t) => t(ctx));
}

const always: Test = () => true;
const never: Test = () => false;

/**
 * Compiles a policy that has already been validated. Rules OR, clauses AND, matches OR;
 * zero rules → never, zero clauses → always, zero matches → true, empty matches skipped.
 */
export function compilePolicy(policy: Authorization): CompiledPolicy {
  const rules: Test[] = policy.rules.map((rule) => {
    const clauses: Test[] = rule.clauses.map((clause) => {
      if (clause.matches.length === 0) return always;
      const matches = clause.matches.map(compileMatch).filter((t): t is Test => !!t);
      if (matches.length === 0) return never;
      if (matches.length === 1) return matches[0]!;
      return (ctx) => matches.some((t) => t(ctx));
    });
    if (clauses.length === 0) return always;
    if (clauses.length === 1) return clauses[0]!;
    return (ctx) => clauses.every((t) => t(ctx));
  });
  const key = `${policy.namespace}/${policy.name}`;
  let matches: Test;
  if (rules.length === 0) matches = never;
  else if (rules.length === 1) matches = rules[0]!;
  else matches = (ctx) => rules.some((t) => t(ctx));
  return { key, policy, matches };
}
