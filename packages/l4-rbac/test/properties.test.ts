import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type Authorization,
  compilePolicy,
  matchContext,
  PolicyStore,
  type RbacRequest,
} from '../src/index.js';
import { policiesArb, policyArb, requestArb } from './arbitraries.js';

function storeWith(policies: Authorization[]): PolicyStore {
  const store = new PolicyStore();
  store.replaceAll(policies);
  return store;
}

const verdict = (store: PolicyStore, req: RbacRequest) => {
  const d = store.evaluate(req);
  return { allowed: d.allowed, reason: d.reason, policy: d.policy };
};

describe('decision properties', () => {
  it('an enforced DENY that matches and applies always wins', () => {
    fc.assert(
      fc.property(
        policiesArb,
        policyArb({ dryRun: fc.constant(false) }),
        requestArb,
        (ps, d, req) => {
          const deny: Authorization = { ...d, name: 'the-deny', action: 'DENY' };
          fc.pre(compilePolicy(deny).matches(matchContext(req)));
          // Make sure it applies to the destination, whatever its scope.
          const dest = {
            ...req.destination,
            authorizationPolicies: [
              ...(req.destination.authorizationPolicies ?? []),
              `${deny.namespace}/the-deny`,
            ],
          };
          const decision = storeWith([...ps, deny]).evaluate({ ...req, destination: dest });
          expect(decision.allowed).toBe(false);
          expect(decision.reason).toBe('explicitly-denied');
        },
      ),
      { numRuns: 300 },
    );
  });

  it('adding a policy for another namespace never changes a decision', () => {
    fc.assert(
      fc.property(
        policiesArb,
        policyArb({ namespace: fc.constant('elsewhere') }),
        requestArb,
        (ps, extra, req) => {
          fc.pre(extra.scope !== 'GLOBAL');
          const before = verdict(storeWith(ps), req);
          const after = verdict(storeWith([...ps, extra]), req);
          expect(after).toEqual(before);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('dry-run policies never change a decision', () => {
    fc.assert(
      fc.property(
        policiesArb,
        fc.array(policyArb({ dryRun: fc.constant(true) }), { maxLength: 4 }),
        requestArb,
        (ps, dry, req) => {
          const keys = new Set(ps.map((p) => `${p.namespace}/${p.name}`));
          const fresh = dry
            .map((p, i) => ({ ...p, name: `dry-${i}` }))
            .filter((p) => !keys.has(`${p.namespace}/${p.name}`));
          const dest = {
            ...req.destination,
            authorizationPolicies: [
              ...(req.destination.authorizationPolicies ?? []),
              ...fresh.map((p) => `${p.namespace}/${p.name}`),
            ],
          };
          const r = { ...req, destination: dest };
          expect(verdict(storeWith([...ps, ...fresh]), r)).toEqual(verdict(storeWith(ps), r));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('evaluation is deterministic: same input, same decision, whatever the insertion order', () => {
    fc.assert(
      fc.property(policiesArb, requestArb, (ps, req) => {
        const store = storeWith(ps);
        const first = store.evaluate(req);
        expect(store.evaluate(req)).toEqual(first);
        const reversed = storeWith([...ps].reverse()).evaluate(req);
        expect({ allowed: reversed.allowed, reason: reversed.reason }).toEqual({
          allowed: first.allowed,
          reason: first.reason,
        });
      }),
      { numRuns: 300 },
    );
  });

  it('with no enforced ALLOW and no matching DENY the connection is allowed', () => {
    fc.assert(
      fc.property(policiesArb, requestArb, (ps, req) => {
        const store = storeWith(ps);
        const applicable = store.policiesFor(req.destination).policies;
        const ctx = matchContext(req);
        const denyHit = applicable.some(
          (p) => !p.dryRun && p.action === 'DENY' && compilePolicy(p).matches(ctx),
        );
        const allowExists = applicable.some((p) => !p.dryRun && p.action === 'ALLOW');
        const allowHit = applicable.some(
          (p) => !p.dryRun && p.action === 'ALLOW' && compilePolicy(p).matches(ctx),
        );
        expect(store.evaluate(req).allowed).toBe(!denyHit && (!allowExists || allowHit));
      }),
      { numRuns: 300 },
    );
  });
});
