import diagnosticsChannel from 'node:diagnostics_channel';
import { type CompiledPolicy, compilePolicy } from './compile.js';
import type { Authorization } from './model.js';
import { type MatchContext, matchContext, type RbacRequest } from './request.js';
import { validateAuthorization } from './validate.js';

/**
 * Why a connection was allowed or denied.
 * - `no-allow-policies`: no enforced DENY matched and no enforced ALLOW applies.
 * - `allowed-by-policy`: an enforced ALLOW matched (named in `policy`).
 * - `explicitly-denied`: an enforced DENY matched (named in `policy`).
 * - `no-allow-matched`: enforced ALLOW policies apply but none matched.
 */
export type RbacReason =
  | 'no-allow-policies'
  | 'allowed-by-policy'
  | 'explicitly-denied'
  | 'no-allow-matched';

/** What the dry-run policies that apply would have done had they been enforced. */
export interface DryRunOutcome {
  /** Dry-run DENY policies that matched (`ns/name`). */
  denyMatched: string[];
  /** Dry-run ALLOW policies that matched (`ns/name`). */
  allowMatched: string[];
  /** The verdict with dry-run policies enforced alongside the enforced ones. */
  allowed: boolean;
  /** True when enforcing the dry-run policies would flip the verdict. */
  changed: boolean;
  /**
   * The dry-run policies that would flip it: the matching dry-run DENYs, the matching dry-run
   * ALLOWs, or (when they would turn on an allow-list that nothing matches) every dry-run ALLOW.
   */
  changedBy: string[];
}

export interface RbacDecision {
  allowed: boolean;
  reason: RbacReason;
  /** `ns/name` of the policy that decided (`explicitly-denied`, `allowed-by-policy`). */
  policy?: string;
  /** ztunnel's wording: `explicitly denied by: ns/name`, `allow policies exist, but none allowed`. */
  message: string;
  /** Number of distinct policies that applied (enforced and dry-run). */
  applied: number;
  /** Present when dry-run policies applied. */
  dryRun?: DryRunOutcome;
  /** Keys in the workload's `authorizationPolicies` the store does not hold (skipped). */
  unknownPolicies?: string[];
}

/**
 * The applicable policies of one decision, split the way §5.2 reads them. `deny` and `allow`
 * may leave out applicable policies whose guard rules out this peer (they cannot match);
 * `allowCount` and `applied` still count them.
 */
export interface ApplicablePolicies {
  deny: CompiledPolicy[];
  allow: CompiledPolicy[];
  dryRun: CompiledPolicy[];
  /** Enforced ALLOW policies that apply, whether or not they are candidates in `allow`. */
  allowCount: number;
  /** Distinct policies that apply (enforced and dry-run). */
  applied: number;
  unknown?: string[];
}

/** Published on `mesh:rbac:decision` for every decision, when someone subscribes. */
export interface DecisionMessage {
  request: RbacRequest;
  decision: RbacDecision;
}

export const decisionChannel = diagnosticsChannel.channel('mesh:rbac:decision');

export const NONE_ALLOWED = 'allow policies exist, but none allowed';

/** Splits an arbitrary list of compiled policies into the three groups. */
export function splitPolicies(policies: Iterable<CompiledPolicy>): ApplicablePolicies {
  const out: ApplicablePolicies = { deny: [], allow: [], dryRun: [], allowCount: 0, applied: 0 };
  const seen = new Set<string>();
  for (const p of policies) {
    if (seen.has(p.key)) continue;
    seen.add(p.key);
    if (p.policy.dryRun) out.dryRun.push(p);
    else if (p.policy.action === 'DENY') out.deny.push(p);
    else out.allow.push(p);
  }
  out.allowCount = out.allow.length;
  out.applied = seen.size;
  return out;
}

function dryRunOutcome(
  set: ApplicablePolicies,
  ctx: MatchContext,
  enforcedDenied: boolean,
  enforcedAllowMatched: boolean,
  allowed: boolean,
): DryRunOutcome {
  const denyMatched: string[] = [];
  const allowMatched: string[] = [];
  const dryAllows: string[] = [];
  for (const p of set.dryRun) {
    const hit = p.matches(ctx);
    if (p.policy.action === 'DENY') {
      if (hit) denyMatched.push(p.key);
    } else {
      dryAllows.push(p.key);
      if (hit) allowMatched.push(p.key);
    }
  }
  let would: boolean;
  if (enforcedDenied || denyMatched.length > 0) would = false;
  else if (set.allowCount + dryAllows.length === 0) would = true;
  else would = enforcedAllowMatched || allowMatched.length > 0;
  let changedBy: string[] = [];
  if (would !== allowed) {
    if (would) changedBy = allowMatched;
    else changedBy = denyMatched.length > 0 ? denyMatched : dryAllows;
  }
  return { denyMatched, allowMatched, allowed: would, changed: would !== allowed, changedBy };
}

/** §5.2: dry-run never decides; enforced DENY first; no enforced ALLOW → allow; else one must match. */
export function decideWith(
  set: ApplicablePolicies,
  ctx: MatchContext,
  request: RbacRequest,
): RbacDecision {
  let decision: RbacDecision | undefined;
  const applied = set.applied;
  for (const p of set.deny) {
    if (p.matches(ctx)) {
      decision = {
        allowed: false,
        reason: 'explicitly-denied',
        policy: p.key,
        message: `explicitly denied by: ${p.key}`,
        applied,
      };
      break;
    }
  }
  if (!decision) {
    if (set.allowCount === 0) {
      decision = {
        allowed: true,
        reason: 'no-allow-policies',
        message: 'no allow policies apply',
        applied,
      };
    } else {
      for (const p of set.allow) {
        if (p.matches(ctx)) {
          decision = {
            allowed: true,
            reason: 'allowed-by-policy',
            policy: p.key,
            message: `allowed by: ${p.key}`,
            applied,
          };
          break;
        }
      }
      decision ??= { allowed: false, reason: 'no-allow-matched', message: NONE_ALLOWED, applied };
    }
  }
  if (set.dryRun.length > 0) {
    decision.dryRun = dryRunOutcome(
      set,
      ctx,
      decision.reason === 'explicitly-denied',
      decision.reason === 'allowed-by-policy',
      decision.allowed,
    );
  }
  if (set.unknown && set.unknown.length > 0) decision.unknownPolicies = set.unknown;
  if (decisionChannel.hasSubscribers) {
    decisionChannel.publish({ request, decision } satisfies DecisionMessage);
  }
  return decision;
}

function isCompiled(p: CompiledPolicy | Authorization): p is CompiledPolicy {
  return typeof (p as CompiledPolicy).matches === 'function';
}

/**
 * Decides a connection against an explicit list of policies (all assumed to apply), without a
 * store. Plain policies are validated and compiled on the way (throwing `RbacError`);
 * duplicate keys count once.
 */
export function decide(
  policies: Iterable<CompiledPolicy | Authorization>,
  request: RbacRequest,
): RbacDecision {
  const compiled: CompiledPolicy[] = [];
  for (const p of policies) {
    compiled.push(isCompiled(p) ? p : compilePolicy(validateAuthorization(p).policy));
  }
  return decideWith(splitPolicies(compiled), matchContext(request), request);
}
