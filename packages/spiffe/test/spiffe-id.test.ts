import { IstioIdentity, SpiffeError, SpiffeId } from '@mesh/spiffe';
import { describe, expect, it } from 'vitest';

describe('SpiffeId', () => {
  it('parses an Istio identity into its parts', () => {
    const id = SpiffeId.parse('spiffe://cluster.local/ns/default/sa/demo');
    const istio = id.asIstio();
    expect(istio).toBeInstanceOf(IstioIdentity);
    expect(istio?.namespace).toBe('default');
    expect(istio?.serviceAccount).toBe('demo');
    expect(istio?.principal).toBe('cluster.local/ns/default/sa/demo');
    expect(id.toString()).toBe('spiffe://cluster.local/ns/default/sa/demo');
  });

  it.each([
    ['', 'empty'],
    ['http://cluster.local/ns/a/sa/b', 'scheme'],
    ['SPIFFE://cluster.local/x', 'lowercase'],
    ['spiffe://', 'trust domain is empty'],
    ['spiffe://Cluster.local/x', 'lowercase letters'],
    ['spiffe://cluster.local:8080/x', 'port'],
    ['spiffe://user@cluster.local/x', 'user info'],
    ['spiffe://cluster.local/', 'empty segment'],
    ['spiffe://cluster.local/a//b', 'empty segment'],
    ['spiffe://cluster.local/a/./b', '"."'],
    ['spiffe://cluster.local/a/../b', '".."'],
    ['spiffe://cluster.local/a?x=1', 'query'],
    ['spiffe://cluster.local/a#frag', 'fragment'],
    ['spiffe://cluster.local/a%20b', 'percent'],
    ['spiffe://cluster.local/a b', 'may contain only'],
    [`spiffe://${'a'.repeat(256)}/x`, 'longer than 255'],
  ])('rejects %j saying %s', (input, reason) => {
    let error: unknown;
    try {
      SpiffeId.parse(input);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(SpiffeError);
    expect((error as SpiffeError).code).toBe('ERR_SPIFFE_ID_INVALID');
    expect((error as SpiffeError).message).toContain(reason);
  });

  it('refuses a valid non-Istio ID where an Istio identity is required', () => {
    expect(() => IstioIdentity.parse('spiffe://example.org/workload/x')).toThrowError(
      expect.objectContaining({ code: 'ERR_SPIFFE_ID_NOT_ISTIO' }),
    );
  });

  it('accepts a trust domain ID with no path', () => {
    const id = SpiffeId.parse('spiffe://example.org');
    expect(id.segments).toEqual([]);
    expect(id.asIstio()).toBeUndefined();
  });
});
