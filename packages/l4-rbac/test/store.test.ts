import diagnosticsChannel from 'node:diagnostics_channel';
import { afterEach, describe, expect, it } from 'vitest';
import {
  type Authorization,
  type DecisionMessage,
  type PolicyChange,
  PolicyStore,
  RbacError,
} from '../src/index.js';
import { cidr, exact, match, policy, request, rule } from './helpers.js';

const allowShop = policy({
  name: 'allow-shop',
  namespace: 'shop',
  rules: [rule([match({ namespaces: [exact('shop')] })])],
});
const denyRange = policy({
  name: 'deny-range',
  namespace: 'shop',
  action: 'DENY',
  rules: [rule([match({ sourceIps: [cidr('10.9.0.0', 16)] })])],
});
const badCidr = policy({
  name: 'bad',
  namespace: 'shop',
  rules: [rule([match({ sourceIps: [cidr('10.0.0.300', 8)] })])],
});
const toShop = (fields = {}) => request({ destination: { namespace: 'shop' }, ...fields });

function snapshot(store: PolicyStore) {
  return { version: store.version, keys: [...store.keys()], values: [...store.values()] };
}

describe('PolicyStore updates', () => {
  it('a batch with one invalid policy changes nothing and emits nothing', () => {
    const store = new PolicyStore();
    store.set(allowShop);
    const before = snapshot(store);
    const events: PolicyChange[] = [];
    store.on('change', (c) => events.push(c));
    const attempt = () =>
      store.apply({ upsert: [denyRange, badCidr], remove: ['shop/allow-shop'] });
    expect(attempt).toThrow(RbacError);
    try {
      attempt();
    } catch (err) {
      expect((err as RbacError).code).toBe('ERR_RBAC_INVALID_CIDR');
      expect((err as RbacError).message).toMatch(/batch entry 1/);
    }
    expect(snapshot(store)).toEqual(before);
    expect(events).toEqual([]);
    expect(store.evaluate(toShop({ identity: 'spiffe://td/ns/shop/sa/a' })).allowed).toBe(true);
  });

  it('a batch applies removals then upserts and reports one change', () => {
    const store = new PolicyStore();
    store.set(allowShop);
    const events: PolicyChange[] = [];
    store.on('change', (c) => events.push(c));
    const { change } = store.apply({
      upsert: [denyRange],
      remove: ['shop/allow-shop', 'shop/none'],
    });
    expect(change).toEqual({
      version: 2,
      upserted: ['shop/deny-range'],
      removed: ['shop/allow-shop'],
    });
    expect(events).toEqual([change]);
    expect([...store.keys()]).toEqual(['shop/deny-range']);
  });

  it('removing and re-adding a key in one batch reports it only as upserted', () => {
    const store = new PolicyStore();
    store.set(allowShop);
    const { change } = store.apply({ upsert: [allowShop], remove: ['shop/allow-shop'] });
    expect(change).toMatchObject({ upserted: ['shop/allow-shop'], removed: [] });
    expect(store.size).toBe(1);
  });

  it('replaceAll drops policies that are not in the new set', () => {
    const store = new PolicyStore();
    store.apply({ upsert: [allowShop, denyRange] });
    const { change } = store.replaceAll([denyRange]);
    expect(change.removed).toEqual(['shop/allow-shop']);
    expect(store.get('shop/allow-shop')).toBeUndefined();
    expect(store.evaluate(toShop()).allowed).toBe(true);
  });

  it('delete reports whether the key existed and unindexes the policy', () => {
    const store = new PolicyStore();
    store.set(denyRange);
    expect(store.evaluate(toShop({ sourceIp: '10.9.1.1' })).allowed).toBe(false);
    expect(store.delete('shop/deny-range')).toBe(true);
    expect(store.delete('shop/deny-range')).toBe(false);
    expect(store.evaluate(toShop({ sourceIp: '10.9.1.1' })).allowed).toBe(true);
  });

  it('stores a validated copy, so mutating the input later has no effect', () => {
    const store = new PolicyStore();
    const p: Authorization = structuredClone(denyRange);
    store.set(p);
    p.rules = [];
    p.action = 'ALLOW';
    expect(store.evaluate(toShop({ sourceIp: '10.9.1.1' })).allowed).toBe(false);
  });

  it('recheck returns the live connections a policy change now denies (late rejection)', () => {
    const store = new PolicyStore();
    const live = [
      toShop({ identity: 'spiffe://td/ns/shop/sa/a', sourceIp: '10.1.0.1' }),
      toShop({ identity: 'spiffe://td/ns/other/sa/b', sourceIp: '10.1.0.2' }),
      toShop({ identity: null, sourceIp: '10.9.0.3' }),
    ];
    const denied: string[] = [];
    store.on('change', () => {
      for (const r of store.recheck(live))
        denied.push(`${r.request.sourceIp} ${r.decision?.message}`);
    });
    store.set(allowShop);
    expect(denied).toEqual([
      '10.1.0.2 allow policies exist, but none allowed',
      '10.9.0.3 allow policies exist, but none allowed',
    ]);
    denied.length = 0;
    store.set({ ...allowShop, rules: [{ clauses: [] }] });
    expect(denied).toEqual([]);
    store.set(denyRange);
    expect(denied).toEqual(['10.9.0.3 explicitly denied by: shop/deny-range']);
  });

  it('recheck reports a malformed tracked connection instead of throwing', () => {
    const store = new PolicyStore();
    const [result] = store.recheck([toShop({ sourceIp: 'not-an-ip' })]);
    expect(result?.error?.code).toBe('ERR_RBAC_INVALID_REQUEST');
  });

  it('lookup returns only the policies that apply to the destination', () => {
    const store = new PolicyStore();
    const others = Array.from({ length: 50 }, (_, i) =>
      policy({ name: `p${i}`, namespace: `ns${i}` }),
    );
    store.apply({ upsert: [...others, allowShop] });
    expect(store.policiesFor({ namespace: 'shop' }).policies.map((p) => p.name)).toEqual([
      'allow-shop',
    ]);
  });
});

describe('diagnostics channels', () => {
  const subscriptions: Array<() => void> = [];
  afterEach(() => {
    for (const off of subscriptions.splice(0)) off();
  });

  it('publishes every decision on mesh:rbac:decision with the request', () => {
    const seen: DecisionMessage[] = [];
    const fn = (m: unknown) => seen.push(m as DecisionMessage);
    diagnosticsChannel.subscribe('mesh:rbac:decision', fn);
    subscriptions.push(() => diagnosticsChannel.unsubscribe('mesh:rbac:decision', fn));
    const store = new PolicyStore();
    store.set(denyRange);
    const req = toShop({ sourceIp: '10.9.3.3' });
    store.evaluate(req);
    expect(seen).toHaveLength(1);
    expect(seen[0]?.request).toBe(req);
    expect(seen[0]?.decision).toMatchObject({ allowed: false, policy: 'shop/deny-range' });
  });

  it('publishes store updates on mesh:rbac:policy-change', () => {
    const seen: unknown[] = [];
    const fn = (m: unknown) => seen.push(m);
    diagnosticsChannel.subscribe('mesh:rbac:policy-change', fn);
    subscriptions.push(() => diagnosticsChannel.unsubscribe('mesh:rbac:policy-change', fn));
    const store = new PolicyStore();
    store.set(allowShop);
    expect(seen).toEqual([{ version: 1, upserted: ['shop/allow-shop'], removed: [] }]);
  });
});
