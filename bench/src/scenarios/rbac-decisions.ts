/**
 * L4 authorization decisions per second through `PolicyStore.evaluate`, with 10, 1,000 and
 * 10,000 policies of 10 rules each (ztunnel's own `rbac` bench shape), placed either all in
 * the destination's namespace (every one applies) or spread across other namespaces (none
 * applies). The spread figures prove the scope index: lookup cost must not grow with policies
 * that do not apply (10 vs 10,000 unrelated: within 1.2x).
 */

import diagnosticsChannel from 'node:diagnostics_channel';
import { performance } from 'node:perf_hooks';
import {
  type Authorization,
  emptyMatch,
  type Match,
  PolicyStore,
  type RbacRequest,
} from '@mesh/l4-rbac';
import type { Measurement, Scenario } from '../scenario.js';

const COUNTS = [10, 1_000, 10_000] as const;
const RULES_PER_POLICY = 10;
const DEST_NS = 'shop';
type PrincipalKind = 'exact' | 'prefix';

function m(fields: Partial<Match>): Match {
  return { ...emptyMatch(), ...fields };
}

/**
 * A DENY policy of 10 rules (principal AND source CIDR AND port) that never matches the bench
 * traffic. With exact principals the store's guard index skips it for other peers; with
 * prefix principals it cannot be indexed, so every rule is evaluated (ztunnel's linear case).
 */
function denyPolicy(namespace: string, i: number, kind: PrincipalKind): Authorization {
  return {
    name: `deny-${i}`,
    namespace,
    scope: 'NAMESPACE',
    action: 'DENY',
    dryRun: false,
    rules: Array.from({ length: RULES_PER_POLICY }, (_, r) => ({
      clauses: [
        {
          matches: [
            m({
              principals: [
                kind === 'exact'
                  ? { kind, value: `cluster.local/ns/blocked-${i}/sa/sa-${r}` }
                  : { kind, value: `cluster.local/ns/blocked-${i}/sa/` },
              ],
            }),
          ],
        },
        { matches: [m({ sourceIps: [{ address: `10.${r}.${i % 256}.0`, prefixLength: 24 }] })] },
        { matches: [m({ destinationPorts: [1000 + r] })] },
      ],
    })),
  };
}

const allowShop: Authorization = {
  name: 'allow-shop',
  namespace: DEST_NS,
  scope: 'NAMESPACE',
  action: 'ALLOW',
  dryRun: false,
  rules: [{ clauses: [{ matches: [m({ namespaces: [{ kind: 'exact', value: DEST_NS }] })] }] }],
};

function storeWith(inDest: number, elsewhere: number, kind: PrincipalKind): PolicyStore {
  const policies: Authorization[] = [allowShop];
  for (let i = 0; i < inDest; i++) policies.push(denyPolicy(DEST_NS, i, kind));
  // 100 namespaces of unrelated policies, plus selector policies no workload lists.
  for (let i = 0; i < elsewhere; i++) {
    const p = denyPolicy(`ns-${i % 100}`, i, kind);
    policies.push(i % 10 === 0 ? { ...p, scope: 'WORKLOAD_SELECTOR' } : p);
  }
  const store = new PolicyStore();
  store.replaceAll(policies);
  return store;
}

const REQUESTS: RbacRequest[] = Array.from({ length: 16 }, (_, i) => ({
  identity: `spiffe://cluster.local/ns/${DEST_NS}/sa/client-${i}`,
  sourceIp: `10.200.${i}.7`,
  destination: { namespace: DEST_NS, authorizationPolicies: [] },
  destinationIp: '10.1.0.5',
  destinationPort: 8080,
}));

/** Decisions per second over `ms`, in batches so the clock is read rarely. */
function rate(store: PolicyStore, ms: number): number {
  let n = 0;
  let allowed = 0;
  const start = performance.now();
  let now = start;
  const batch = 16;
  while (now - start < ms) {
    for (let i = 0; i < batch; i++) {
      if (store.evaluate(REQUESTS[(n + i) & 15]!).allowed) allowed++;
    }
    n += batch;
    now = performance.now();
  }
  if (allowed !== n) throw new Error(`bench traffic was denied ${n - allowed} times`);
  return (n * 1000) / (now - start);
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

const BASELINE = '10 unrelated (other namespaces)';
const FAR = '10000 unrelated (other namespaces)';

const scenario: Scenario = {
  name: 'l4-rbac/decisions',
  description:
    'PolicyStore.evaluate decisions/s with 10, 1k, 10k policies (10 rules each): in the destination namespace (indexed, linear) vs spread elsewhere',
  kind: 'micro',
  async run(ctx) {
    const rounds = ctx.quick ? 2 : 7;
    const slice = ctx.quick ? 50 : 300;
    const cases: Array<{ name: string; store: PolicyStore }> = [];
    for (const n of COUNTS) {
      if (ctx.signal.aborted) throw ctx.signal.reason;
      ctx.log(`building stores with ${n} policies`);
      cases.push({ name: `${n} unrelated (other namespaces)`, store: storeWith(10, n, 'exact') });
      cases.push({
        name: `${n} in destination namespace, exact principals (indexed)`,
        store: storeWith(n, 0, 'exact'),
      });
      cases.push({
        name: `${n} in destination namespace, prefix principals (linear)`,
        store: storeWith(n, 0, 'prefix'),
      });
    }
    // Warm up every store so the JIT sees all shapes before timing.
    for (const c of cases) rate(c.store, slice / 2);
    const samples = new Map<string, number[]>(cases.map((c) => [c.name, []]));
    for (let r = 0; r < rounds; r++) {
      if (ctx.signal.aborted) throw ctx.signal.reason;
      // Interleaved so machine noise hits every case alike.
      for (const c of cases) samples.get(c.name)!.push(rate(c.store, slice));
      await new Promise((resolve) => setImmediate(resolve));
    }
    // The price of one diagnostics_channel subscriber on the decision path.
    const subscriber = () => {};
    diagnosticsChannel.subscribe('mesh:rbac:decision', subscriber);
    const withSub: number[] = [];
    try {
      for (let r = 0; r < rounds; r++) withSub.push(rate(cases[0]!.store, slice));
    } finally {
      diagnosticsChannel.unsubscribe('mesh:rbac:decision', subscriber);
    }

    const measurements: Measurement[] = cases.map((c) => {
      const values = samples.get(c.name)!;
      return {
        name: c.name,
        unit: 'decisions/s',
        value: median(values),
        better: 'higher',
        ...(c.name === BASELINE ? {} : { compareTo: [BASELINE] }),
        extra: { min: Math.min(...values), max: Math.max(...values), rounds },
      };
    });
    measurements.push({
      name: '10 unrelated, decision channel subscribed',
      unit: 'decisions/s',
      value: median(withSub),
      better: 'higher',
      compareTo: [BASELINE],
    });
    // Medians for the record; best-of-rounds for the check, being the least disturbed by
    // other load on a shared machine.
    const near = samples.get(BASELINE)!;
    const far = samples.get(FAR)!;
    const best = Math.max(...near) / Math.max(...far);
    const byMedian = median(near) / median(far);
    return {
      measurements,
      notes: [
        `Each policy: DENY, ${RULES_PER_POLICY} rules x 3 clauses (principal, source CIDR, port), never matching; one ALLOW for the destination namespace matches, so every decision is "allowed by: shop/allow-shop".`,
        'Unrelated: spread over 100 other namespaces, every tenth WORKLOAD_SELECTOR and listed by no workload; the destination namespace also holds 10 policies.',
        'Exact principals: the store files each policy under the principals its rules require and evaluates only those filed under the peer. Prefix principals defeat that index: every policy and rule is evaluated, as in ztunnel.',
        `Scope index check: 10 vs 10,000 unrelated policies cost ${best.toFixed(3)}x best-of-rounds (${byMedian.toFixed(3)}x by median); target <= 1.2x: ${best <= 1.2 ? 'PASS' : 'FAIL'}.`,
        `Median of ${rounds} interleaved ${slice} ms slices; 16 distinct peers cycled.`,
      ],
    };
  },
};

export default scenario;
