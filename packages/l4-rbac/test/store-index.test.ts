import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compilePolicy, matchContext, PolicyStore } from '../src/index.js';
import { policyArb, requestArb } from './arbitraries.js';
import { exact, match, policy, prefix, presence, request, rule } from './helpers.js';

const p = (principal: string) => match({ principals: [exact(principal)] });

describe('policy guards (what the store indexes on)', () => {
  it('every rule requiring exact principals gives a principal guard of their union', () => {
    const c = compilePolicy(
      policy({
        rules: [
          rule([p('td/ns/a/sa/x'), p('td/ns/a/sa/y')], [match({ destinationPorts: [80] })]),
          rule([p('td/ns/b/sa/z')]),
        ],
      }),
    );
    expect(c.guard).toEqual({
      on: 'principal',
      values: ['td/ns/a/sa/x', 'td/ns/a/sa/y', 'td/ns/b/sa/z'],
    });
  });
  it('one rule without an exact principal or namespace removes the guard', () => {
    const c = compilePolicy(
      policy({ rules: [rule([p('td/ns/a/sa/x')]), rule([match({ destinationPorts: [80] })])] }),
    );
    expect(c.guard).toBeUndefined();
  });
  it('prefix or presence principals fall back to an exact namespace guard', () => {
    const c = compilePolicy(
      policy({ rules: [rule([match({ principals: [prefix('td/')], namespaces: [exact('a')] })])] }),
    );
    expect(c.guard).toEqual({ on: 'namespace', values: ['a'] });
    const none = compilePolicy(policy({ rules: [rule([match({ principals: [presence] })])] }));
    expect(none.guard).toBeUndefined();
  });
  it('a policy that can never match has an empty guard', () => {
    expect(compilePolicy(policy({ rules: [] })).guard).toEqual({ on: 'principal', values: [] });
    expect(compilePolicy(policy({ rules: [rule([match({})])] })).guard).toEqual({
      on: 'principal',
      values: [],
    });
  });
  it('a rule that always holds (no clauses) has no guard', () => {
    expect(compilePolicy(policy({ rules: [{ clauses: [] }] })).guard).toBeUndefined();
  });

  it('a guarded ALLOW that cannot match the peer still makes the allow-list enforced', () => {
    const store = new PolicyStore();
    store.set(policy({ name: 'only-x', rules: [rule([p('td/ns/a/sa/x')])] }));
    const other = store.evaluate(request({ identity: 'spiffe://td/ns/a/sa/y' }));
    expect(other).toMatchObject({ allowed: false, reason: 'no-allow-matched', applied: 1 });
    expect(store.evaluate(request({ identity: 'spiffe://td/ns/a/sa/x' })).allowed).toBe(true);
    expect(store.evaluate(request()).allowed).toBe(false);
  });

  it('re-indexes a guarded policy when its principals change', () => {
    const store = new PolicyStore();
    const deny = policy({ name: 'd', action: 'DENY', rules: [rule([p('td/ns/a/sa/x')])] });
    store.set(deny);
    store.set({ ...deny, rules: [rule([p('td/ns/a/sa/y')])] });
    expect(store.evaluate(request({ identity: 'spiffe://td/ns/a/sa/x' })).allowed).toBe(true);
    expect(store.evaluate(request({ identity: 'spiffe://td/ns/a/sa/y' })).allowed).toBe(false);
    store.delete('ns/d');
    expect(store.evaluate(request({ identity: 'spiffe://td/ns/a/sa/y' })).allowed).toBe(true);
  });

  it('the indexed decision always equals a linear evaluation of every applicable policy', () => {
    // Principal- and namespace-heavy policies, so most of them are guarded.
    const guardedArb = policyArb().map((pol) => ({
      ...pol,
      rules: pol.rules.map((r) => ({
        clauses: r.clauses.map((c) => ({
          matches: c.matches.map((m) => ({
            ...m,
            principals: m.principals.filter((s) => s.kind === 'exact'),
          })),
        })),
      })),
    }));
    fc.assert(
      fc.property(fc.array(guardedArb, { maxLength: 10 }), requestArb, (ps, req) => {
        const unique = [...new Map(ps.map((x) => [`${x.namespace}/${x.name}`, x])).values()];
        const store = new PolicyStore();
        store.replaceAll(unique);
        const ctx = matchContext(req);
        const enforced = store.policiesFor(req.destination).policies.filter((x) => !x.dryRun);
        const hit = (action: string) =>
          enforced.some((x) => x.action === action && compilePolicy(x).matches(ctx));
        const allows = enforced.some((x) => x.action === 'ALLOW');
        const d = store.evaluate(req);
        expect(d.allowed).toBe(!hit('DENY') && (!allows || hit('ALLOW')));
        expect(d.applied).toBe(store.policiesFor(req.destination).policies.length);
      }),
      { numRuns: 500 },
    );
  });
});
