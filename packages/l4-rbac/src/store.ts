import diagnosticsChannel from 'node:diagnostics_channel';
import { EventEmitter } from 'node:events';
import { type CompiledPolicy, compilePolicy } from './compile.js';
import { type ApplicablePolicies, decideWith, type RbacDecision } from './decide.js';
import { RbacError, type RbacWarning } from './errors.js';
import type { Authorization } from './model.js';
import {
  type DestinationWorkload,
  type MatchContext,
  matchContext,
  type RbacRequest,
} from './request.js';
import { validateAuthorization } from './validate.js';

/** What changed in one store update; `version` increases by one per update. */
export interface PolicyChange {
  version: number;
  /** Keys (`ns/name`) added or replaced. */
  upserted: string[];
  /** Keys removed (only those the store held). */
  removed: string[];
}

/** An atomic update: removals first, then upserts (the last upsert of a key wins). */
export interface PolicyBatch {
  upsert?: readonly Authorization[];
  remove?: readonly string[];
}

export interface PolicyUpdateResult {
  change: PolicyChange;
  warnings: RbacWarning[];
}

export interface PolicyStoreEvents {
  /** After every update that was applied; re-check live connections here (§5.4). */
  change: [PolicyChange];
}

/** The policies that apply to one destination workload, with the keys it names but the store lacks. */
export interface ApplicableSet {
  policies: Authorization[];
  unknown: string[];
}

/**
 * The enforced DENY or ALLOW policies of one bucket. Policies with a guard (an exact principal
 * or namespace every rule requires) are filed under each guard value, so a decision only
 * evaluates those that could match the peer, plus the unguarded ones.
 */
class Group {
  readonly all = new Map<string, CompiledPolicy>();
  readonly #unguarded = new Map<string, CompiledPolicy>();
  readonly #byPrincipal = new Map<string, Map<string, CompiledPolicy>>();
  readonly #byNamespace = new Map<string, Map<string, CompiledPolicy>>();

  get size(): number {
    return this.all.size;
  }

  add(c: CompiledPolicy): void {
    this.all.set(c.key, c);
    if (!c.guard) {
      this.#unguarded.set(c.key, c);
      return;
    }
    const index = c.guard.on === 'principal' ? this.#byPrincipal : this.#byNamespace;
    for (const v of c.guard.values) {
      let m = index.get(v);
      if (!m) {
        m = new Map();
        index.set(v, m);
      }
      m.set(c.key, c);
    }
  }

  delete(c: CompiledPolicy): void {
    this.all.delete(c.key);
    if (!c.guard) {
      this.#unguarded.delete(c.key);
      return;
    }
    const index = c.guard.on === 'principal' ? this.#byPrincipal : this.#byNamespace;
    for (const v of c.guard.values) {
      const m = index.get(v);
      m?.delete(c.key);
      if (m?.size === 0) index.delete(v);
    }
  }

  /** Appends the policies that could match a peer with this principal and namespace. */
  collect(principal: string | undefined, namespace: string | undefined, out: CompiledPolicy[]) {
    for (const c of this.#unguarded.values()) out.push(c);
    if (principal !== undefined) {
      const m = this.#byPrincipal.get(principal);
      if (m) for (const c of m.values()) out.push(c);
    }
    if (namespace !== undefined) {
      const m = this.#byNamespace.get(namespace);
      if (m) for (const c of m.values()) out.push(c);
    }
  }
}

interface Bucket {
  deny: Group;
  allow: Group;
  dryRun: Map<string, CompiledPolicy>;
}

/** Published on `mesh:rbac:policy-change` after every applied update. */
export const policyChangeChannel = diagnosticsChannel.channel('mesh:rbac:policy-change');

/** `ns/name` for a policy or a `{namespace, name}` pair. */
export function policyKey(p: { namespace: string; name: string }): string {
  return `${p.namespace}/${p.name}`;
}

/**
 * Authorization policies indexed the way ztunnel reads them (§5.1): GLOBAL under the empty
 * namespace, NAMESPACE under their namespace, WORKLOAD_SELECTOR only by key through a
 * workload's `authorizationPolicies`. A lookup touches only the destination's namespace, the
 * global bucket and the keys the workload lists, so its cost does not grow with policies that
 * do not apply. Every update is validated in full before anything changes.
 */
export class PolicyStore extends EventEmitter<PolicyStoreEvents> {
  readonly #policies = new Map<string, CompiledPolicy>();
  readonly #byNamespace = new Map<string, Bucket>();
  #version = 0;

  /** Increases by one with every applied update. */
  get version(): number {
    return this.#version;
  }

  get size(): number {
    return this.#policies.size;
  }

  has(key: string): boolean {
    return this.#policies.has(key);
  }

  get(key: string): Authorization | undefined {
    return this.#policies.get(key)?.policy;
  }

  keys(): IterableIterator<string> {
    return this.#policies.keys();
  }

  *values(): IterableIterator<Authorization> {
    for (const c of this.#policies.values()) yield c.policy;
  }

  /** Adds or replaces one policy (re-indexing it if its scope or action changed). */
  set(policy: Authorization): RbacWarning[] {
    return this.apply({ upsert: [policy] }).warnings;
  }

  /** Removes one policy; false when the store did not hold it. */
  delete(key: string): boolean {
    return this.apply({ remove: [key] }).change.removed.length > 0;
  }

  /**
   * Applies a batch atomically: every upsert is validated and compiled first; if any is
   * invalid the store is left untouched and the {@link RbacError} is thrown.
   */
  apply(batch: PolicyBatch): PolicyUpdateResult {
    const { compiled, warnings } = this.#prepare(batch.upsert ?? []);
    const removed: string[] = [];
    for (const key of batch.remove ?? []) {
      if (typeof key === 'string' && this.#remove(key)) removed.push(key);
    }
    return this.#commit(compiled, removed, warnings);
  }

  /** Replaces the whole content atomically (a local-config reload or a state-of-the-world). */
  replaceAll(policies: readonly Authorization[]): PolicyUpdateResult {
    const { compiled, warnings } = this.#prepare(policies);
    const keep = new Set(compiled.map((c) => c.key));
    const removed: string[] = [];
    for (const key of [...this.#policies.keys()]) {
      if (!keep.has(key) && this.#remove(key)) removed.push(key);
    }
    return this.#commit(compiled, removed, warnings);
  }

  clear(): PolicyChange {
    return this.replaceAll([]).change;
  }

  /** The policies that apply to a destination workload (§5.1), deduplicated. */
  policiesFor(destination: DestinationWorkload): ApplicableSet {
    const policies: Authorization[] = [];
    const unknown: string[] = [];
    this.#walk(destination, (c) => policies.push(c.policy), unknown);
    return { policies, unknown };
  }

  /** Decides one connection (§5.2); publishes on `mesh:rbac:decision`. */
  evaluate(request: RbacRequest): RbacDecision {
    const ctx = matchContext(request);
    return decideWith(this.#applicable(request.destination, ctx), ctx, request);
  }

  /**
   * Re-evaluates live connections after a change (late rejection, §5.4) and returns those the
   * current policies deny, with their decisions. Requests that are malformed are returned too,
   * with `error` set, so a caller can close them rather than keep an unchecked connection.
   */
  recheck<T extends RbacRequest>(
    requests: Iterable<T>,
  ): Array<{ request: T; decision?: RbacDecision; error?: RbacError }> {
    const denied: Array<{ request: T; decision?: RbacDecision; error?: RbacError }> = [];
    for (const request of requests) {
      try {
        const decision = this.evaluate(request);
        if (!decision.allowed) denied.push({ request, decision });
      } catch (err) {
        if (err instanceof RbacError) denied.push({ request, error: err });
        else throw err;
      }
    }
    return denied;
  }

  #buckets(ns: string): Array<Bucket | undefined> {
    return [this.#byNamespace.get(''), ns === '' ? undefined : this.#byNamespace.get(ns)];
  }

  /** The listed keys that are not already reached through a bucket, deduplicated. */
  #listed(destination: DestinationWorkload, unknown: string[]): CompiledPolicy[] {
    const listed = destination.authorizationPolicies;
    if (!listed || listed.length === 0) return [];
    const ns = destination.namespace;
    const out: CompiledPolicy[] = [];
    const seen = listed.length > 1 ? new Set<string>() : undefined;
    for (const key of listed) {
      if (seen) {
        if (seen.has(key)) continue;
        seen.add(key);
      }
      const c = this.#policies.get(key);
      if (!c) {
        unknown.push(key);
        continue;
      }
      const p = c.policy;
      if (p.scope === 'GLOBAL' || (p.scope === 'NAMESPACE' && p.namespace === ns && ns !== '')) {
        continue;
      }
      out.push(c);
    }
    return out;
  }

  #walk(destination: DestinationWorkload, visit: (c: CompiledPolicy) => void, unknown: string[]) {
    for (const b of this.#buckets(destination.namespace)) {
      if (!b) continue;
      for (const c of b.deny.all.values()) visit(c);
      for (const c of b.allow.all.values()) visit(c);
      for (const c of b.dryRun.values()) visit(c);
    }
    for (const c of this.#listed(destination, unknown)) visit(c);
  }

  #applicable(destination: DestinationWorkload, ctx: MatchContext): ApplicablePolicies {
    const out: ApplicablePolicies = { deny: [], allow: [], dryRun: [], allowCount: 0, applied: 0 };
    const { principal, namespace } = ctx;
    for (const b of this.#buckets(destination.namespace)) {
      if (!b) continue;
      b.deny.collect(principal, namespace, out.deny);
      b.allow.collect(principal, namespace, out.allow);
      for (const c of b.dryRun.values()) out.dryRun.push(c);
      out.allowCount += b.allow.size;
      out.applied += b.deny.size + b.allow.size + b.dryRun.size;
    }
    const unknown: string[] = [];
    for (const c of this.#listed(destination, unknown)) {
      out.applied++;
      if (c.policy.dryRun) out.dryRun.push(c);
      else if (c.policy.action === 'DENY') out.deny.push(c);
      else {
        out.allow.push(c);
        out.allowCount++;
      }
    }
    if (unknown.length > 0) out.unknown = unknown;
    return out;
  }

  #prepare(upserts: readonly Authorization[]): {
    compiled: CompiledPolicy[];
    warnings: RbacWarning[];
  } {
    const byKey = new Map<string, CompiledPolicy>();
    const warnings: RbacWarning[] = [];
    upserts.forEach((input, i) => {
      try {
        const v = validateAuthorization(input);
        warnings.push(...v.warnings);
        const c = compilePolicy(v.policy);
        byKey.delete(c.key);
        byKey.set(c.key, c);
      } catch (err) {
        if (err instanceof RbacError) {
          throw new RbacError(err.code, `batch entry ${i}: ${err.message}`, { cause: err });
        }
        throw err;
      }
    });
    return { compiled: [...byKey.values()], warnings };
  }

  #remove(key: string): boolean {
    const old = this.#policies.get(key);
    if (!old) return false;
    this.#policies.delete(key);
    this.#unindex(old);
    return true;
  }

  #commit(
    compiled: CompiledPolicy[],
    removed: string[],
    warnings: RbacWarning[],
  ): PolicyUpdateResult {
    for (const c of compiled) {
      const old = this.#policies.get(c.key);
      if (old) this.#unindex(old);
      this.#policies.set(c.key, c);
      this.#index(c);
    }
    const upserted = compiled.map((c) => c.key);
    const removedOnly = removed.filter((k) => !this.#policies.has(k));
    const change: PolicyChange = { version: ++this.#version, upserted, removed: removedOnly };
    if (policyChangeChannel.hasSubscribers) policyChangeChannel.publish(change);
    this.emit('change', change);
    return { change, warnings };
  }

  #bucketName(p: Authorization): string | undefined {
    if (p.scope === 'GLOBAL') return '';
    if (p.scope === 'NAMESPACE') return p.namespace;
    return undefined;
  }

  #index(c: CompiledPolicy): void {
    const name = this.#bucketName(c.policy);
    if (name === undefined) return;
    let b = this.#byNamespace.get(name);
    if (!b) {
      b = { deny: new Group(), allow: new Group(), dryRun: new Map() };
      this.#byNamespace.set(name, b);
    }
    if (c.policy.dryRun) b.dryRun.set(c.key, c);
    else if (c.policy.action === 'DENY') b.deny.add(c);
    else b.allow.add(c);
  }

  #unindex(c: CompiledPolicy): void {
    const name = this.#bucketName(c.policy);
    if (name === undefined) return;
    const b = this.#byNamespace.get(name);
    if (!b) return;
    if (c.policy.dryRun) b.dryRun.delete(c.key);
    else if (c.policy.action === 'DENY') b.deny.delete(c);
    else b.allow.delete(c);
    if (b.deny.size + b.allow.size + b.dryRun.size === 0) this.#byNamespace.delete(name);
  }
}
