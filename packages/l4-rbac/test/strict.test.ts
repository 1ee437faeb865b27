import { describe, expect, it } from 'vitest';
import {
  mtlsPolicyKeys,
  PolicyStore,
  peerAuthenticationPolicy,
  staticStrictPolicy,
  validateAuthorization,
} from '../src/index.js';
import { request } from './helpers.js';

const HBONE = 'spiffe://cluster.local/ns/shop/sa/client';

describe('§5.6 PeerAuthentication STRICT as a policy', () => {
  it('the static policy has the exact istiod shape', () => {
    expect(staticStrictPolicy()).toEqual({
      name: 'istio_converted_static_strict',
      namespace: 'istio-system',
      scope: 'WORKLOAD_SELECTOR',
      action: 'DENY',
      dryRun: false,
      rules: [
        {
          clauses: [
            { matches: [expect.objectContaining({ notPrincipals: [{ kind: 'presence' }] })] },
          ],
        },
      ],
    });
    expect(validateAuthorization(staticStrictPolicy('mesh-root')).warnings).toEqual([]);
  });

  it('denies plaintext and passes mTLS, only on workloads that list it', () => {
    const store = new PolicyStore();
    store.set(staticStrictPolicy());
    const strict = { namespace: 'shop', authorizationPolicies: mtlsPolicyKeys('STRICT') };
    expect(store.evaluate(request({ destination: strict }))).toMatchObject({
      allowed: false,
      message: 'explicitly denied by: istio-system/istio_converted_static_strict',
    });
    expect(store.evaluate(request({ destination: strict, identity: HBONE })).allowed).toBe(true);
    const permissive = { namespace: 'shop', authorizationPolicies: mtlsPolicyKeys('PERMISSIVE') };
    expect(store.evaluate(request({ destination: permissive })).allowed).toBe(true);
  });

  it('STRICT with a PERMISSIVE port denies plaintext everywhere but that port', () => {
    const p = peerAuthenticationPolicy({
      name: 'api',
      namespace: 'shop',
      mode: 'STRICT',
      portLevelMtls: { 9000: 'PERMISSIVE', 8080: 'STRICT' },
    });
    expect(p).toMatchObject({
      name: 'converted_peer_authentication_api',
      namespace: 'shop',
      scope: 'WORKLOAD_SELECTOR',
      action: 'DENY',
    });
    const store = new PolicyStore();
    store.apply({ upsert: [p!, staticStrictPolicy()] });
    const keys = mtlsPolicyKeys('STRICT', p);
    expect(keys).toEqual(['shop/converted_peer_authentication_api']);
    const dest = { namespace: 'shop', authorizationPolicies: keys };
    expect(store.evaluate(request({ destination: dest, destinationPort: 9000 })).allowed).toBe(
      true,
    );
    expect(store.evaluate(request({ destination: dest, destinationPort: 8080 })).allowed).toBe(
      false,
    );
    expect(store.evaluate(request({ destination: dest, destinationPort: 1234 })).allowed).toBe(
      false,
    );
    expect(
      store.evaluate(request({ destination: dest, destinationPort: 1234, identity: HBONE }))
        .allowed,
    ).toBe(true);
  });

  it('PERMISSIVE with a STRICT port denies plaintext on that port only', () => {
    const p = peerAuthenticationPolicy({
      name: 'db',
      namespace: 'shop',
      mode: 'PERMISSIVE',
      portLevelMtls: { 5432: 'STRICT', 80: 'UNSET' },
    });
    const store = new PolicyStore();
    store.set(p!);
    const dest = { namespace: 'shop', authorizationPolicies: mtlsPolicyKeys('PERMISSIVE', p) };
    expect(store.evaluate(request({ destination: dest, destinationPort: 5432 })).allowed).toBe(
      false,
    );
    expect(store.evaluate(request({ destination: dest, destinationPort: 80 })).allowed).toBe(true);
    expect(
      store.evaluate(request({ destination: dest, destinationPort: 5432, identity: HBONE }))
        .allowed,
    ).toBe(true);
  });

  it('no per-port policy when every port has the workload mode or there are no port entries', () => {
    expect(
      peerAuthenticationPolicy({
        name: 'a',
        namespace: 's',
        mode: 'STRICT',
        portLevelMtls: { 80: 'STRICT' },
      }),
    ).toBeUndefined();
    expect(peerAuthenticationPolicy({ name: 'a', namespace: 's', mode: 'STRICT' })).toBeUndefined();
    expect(
      peerAuthenticationPolicy({
        name: 'a',
        namespace: 's',
        mode: 'DISABLE',
        portLevelMtls: { 80: 'PERMISSIVE' },
      }),
    ).toBeUndefined();
    expect(mtlsPolicyKeys('DISABLE')).toEqual([]);
  });
});
