import { describe, expect, it } from 'vitest';
import {
  loadPolicyDocuments,
  type PeerAuthentication,
  parsePeerAuthentication,
  RbacError,
  resolveWorkloadMtls,
} from '../src/index.js';

const pa = (fields: Partial<PeerAuthentication>): PeerAuthentication => ({
  name: 'pa',
  namespace: 'shop',
  mode: 'UNSET',
  portLevelMtls: {},
  ...fields,
});

describe('PeerAuthentication resolution for ambient (§5.6)', () => {
  it('defaults to PERMISSIVE with no policies, so nothing is attached', () => {
    expect(resolveWorkloadMtls([], { namespace: 'shop' })).toEqual({
      mode: 'PERMISSIVE',
      keys: [],
    });
  });
  it('a mesh-wide STRICT in the root namespace attaches the static policy everywhere', () => {
    const r = resolveWorkloadMtls([pa({ namespace: 'istio-system', mode: 'STRICT' })], {
      namespace: 'shop',
    });
    expect(r).toEqual({ mode: 'STRICT', keys: ['istio-system/istio_converted_static_strict'] });
  });
  it('workload overrides namespace overrides mesh; UNSET inherits', () => {
    const list = [
      pa({ name: 'mesh', namespace: 'istio-system', mode: 'STRICT' }),
      pa({ name: 'ns', mode: 'PERMISSIVE' }),
      pa({ name: 'wl', selector: { app: 'api' }, mode: 'UNSET' }),
      pa({ name: 'db', selector: { app: 'db' }, mode: 'STRICT' }),
    ];
    expect(resolveWorkloadMtls(list, { namespace: 'shop', labels: { app: 'api' } }).mode).toBe(
      'PERMISSIVE',
    );
    expect(resolveWorkloadMtls(list, { namespace: 'shop', labels: { app: 'db' } }).mode).toBe(
      'STRICT',
    );
    expect(resolveWorkloadMtls(list, { namespace: 'other' }).mode).toBe('STRICT');
  });
  it('among equals the oldest wins', () => {
    const list = [
      pa({ name: 'b', mode: 'STRICT', createdAt: '2026-01-02T00:00:00Z' }),
      pa({ name: 'a', mode: 'DISABLE', createdAt: '2026-01-01T00:00:00Z' }),
    ];
    expect(resolveWorkloadMtls(list, { namespace: 'shop' }).mode).toBe('DISABLE');
  });
  it('port-level exceptions replace the static policy with the per-port one', () => {
    const list = [
      pa({ name: 'mesh', namespace: 'istio-system', mode: 'STRICT' }),
      pa({ name: 'legacy', selector: { app: 'legacy' }, portLevelMtls: { 9000: 'PERMISSIVE' } }),
    ];
    const r = resolveWorkloadMtls(list, { namespace: 'shop', labels: { app: 'legacy' } });
    expect(r.mode).toBe('STRICT');
    expect(r.keys).toEqual(['shop/converted_peer_authentication_legacy']);
    expect(r.portPolicy?.rules[0]?.clauses[0]?.matches[0]?.notDestinationPorts).toEqual([9000]);
  });
  it('parses manifests and rejects unknown fields and modes', () => {
    const parsed = parsePeerAuthentication({
      apiVersion: 'security.istio.io/v1beta1',
      kind: 'PeerAuthentication',
      metadata: { name: 'x', namespace: 'shop', creationTimestamp: '2026-01-01T00:00:00Z' },
      spec: {
        selector: { matchLabels: { app: 'a' } },
        mtls: { mode: 'STRICT' },
        portLevelMtls: { '8080': { mode: 'DISABLE' } },
      },
    });
    expect(parsed).toEqual({
      name: 'x',
      namespace: 'shop',
      selector: { app: 'a' },
      mode: 'STRICT',
      portLevelMtls: { 8080: 'DISABLE' },
      createdAt: '2026-01-01T00:00:00Z',
    });
    const bad = (spec: unknown) => () =>
      parsePeerAuthentication({
        apiVersion: 'security.istio.io/v1',
        kind: 'PeerAuthentication',
        metadata: { name: 'x' },
        spec,
      });
    for (const spec of [
      { mtls: { mode: 'OPTIONAL' } },
      { mtl: {} },
      { portLevelMtls: { http: { mode: 'STRICT' } } },
    ]) {
      expect(bad(spec)).toThrow(RbacError);
      expect(bad(spec)).toThrow(expect.objectContaining({ code: 'ERR_RBAC_INVALID_MANIFEST' }));
    }
  });
  it('loadPolicyDocuments collects PeerAuthentication documents', () => {
    const loaded = loadPolicyDocuments(
      'apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: d, namespace: istio-system}\nspec: {mtls: {mode: STRICT}}\n',
    );
    expect(loaded.peerAuthentications).toHaveLength(1);
    expect(loaded.warnings).toEqual([]);
  });
});
