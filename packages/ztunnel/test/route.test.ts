import { describe, expect, it } from 'vitest';
import { parseLocalConfig } from '../src/index.js';
import { decideInbound } from '../src/proxy/inbound-decision.js';
import { type RouteContext, resolveMeshHostname, routeOutbound } from '../src/proxy/route.js';
import { StateStore } from '../src/state/store.js';

const yaml = `
workloads:
- { uid: sleep, name: sleep, namespace: default, serviceAccount: sleep, trustDomain: td, workloadIps: ["10.0.0.1"], protocol: HBONE }
- { uid: web-1, name: web-1, namespace: default, serviceAccount: web, trustDomain: td, workloadIps: ["10.0.0.2"], protocol: HBONE,
    services: { "default/web.default.svc": { 80: 8080 } } }
- { uid: legacy, name: legacy, namespace: default, workloadIps: ["10.0.0.3"], services: { "default/web.default.svc": { 80: 9090 } }, capacity: 0 }
- { uid: wp, name: waypoint, namespace: default, serviceAccount: waypoint, trustDomain: td, workloadIps: ["10.0.0.50"], protocol: HBONE }
- { uid: behind, name: behind, namespace: default, serviceAccount: b, trustDomain: td, workloadIps: ["10.0.0.4"], protocol: HBONE,
    waypoint: { destination: "/10.0.0.50", hboneMtlsPort: 15008 } }
services:
- { name: web, namespace: default, hostname: web.default.svc, vips: ["/10.96.0.1"], ports: { 80: 8080 },
    subjectAltNames: ["spiffe://td/ns/default/sa/web-canary"] }
- { name: headless, namespace: default, hostname: headless.default.svc, ports: { 80: 8080 } }
- { name: empty, namespace: default, hostname: empty.default.svc, vips: ["/10.96.0.9"], ports: { 80: 8080 } }
`;

function ctx(): RouteContext {
  const store = new StateStore();
  store.replaceLocal(parseLocalConfig(yaml));
  return {
    store,
    source: store.workloadByUid('sleep')!,
    network: '',
    trustDomain: 'cluster.local',
    hbonePort: 15008,
    isOwnListener: (ip, port) => ip === '127.0.0.1' && port === 15001,
  };
}

describe('routeOutbound', () => {
  it('sends a service VIP to a load-balanced HBONE endpoint with the target port and expected identities', () => {
    const r = routeOutbound(ctx(), '10.96.0.1', 80);
    expect(r.kind).toBe('hbone');
    if (r.kind !== 'hbone') return;
    expect(r.nextHop).toEqual({ host: '10.0.0.2', port: 15008 });
    expect(r.authority).toEqual({ host: '10.0.0.2', port: 8080 });
    expect(r.expectedIdentities.map(String)).toEqual([
      'spiffe://td/ns/default/sa/web-canary',
      'spiffe://td/ns/default/sa/web',
    ]);
    expect(r.service?.name).toBe('web');
  });

  it('sends a workload with a waypoint through the waypoint, keeping the original authority', () => {
    const r = routeOutbound(ctx(), '10.0.0.4', 7000);
    expect(r).toMatchObject({
      kind: 'hbone',
      nextHop: { host: '10.0.0.50', port: 15008 },
      authority: { host: '10.0.0.4', port: 7000 },
      viaWaypoint: true,
    });
  });

  it('passes plain TCP through to non-mesh and non-HBONE destinations', () => {
    expect(routeOutbound(ctx(), '192.0.2.1', 443)).toEqual({
      kind: 'passthrough',
      target: { host: '192.0.2.1', port: 443 },
    });
    expect(routeOutbound(ctx(), '10.0.0.3', 9090)).toMatchObject({
      kind: 'passthrough',
      target: { host: '10.0.0.3', port: 9090 },
    });
  });

  it('refuses self-calls and services without healthy endpoints', () => {
    expect(routeOutbound(ctx(), '127.0.0.1', 15001)).toMatchObject({
      kind: 'refuse',
      code: 'ERR_ZTUNNEL_SELF_CALL',
    });
    expect(routeOutbound(ctx(), '10.96.0.9', 80)).toMatchObject({
      kind: 'refuse',
      code: 'ERR_ZTUNNEL_NO_ROUTE',
    });
  });

  it('resolves mesh host names to the service VIP route or a headless endpoint', () => {
    expect(resolveMeshHostname(ctx(), 'web.default.svc', 80)).toMatchObject({
      kind: 'hbone',
      authority: { port: 8080 },
    });
    expect(resolveMeshHostname(ctx(), 'nothing.example', 80)).toBeUndefined();
  });
});

describe('decideInbound', () => {
  const allow = () => ({ allowed: true, reason: '' });
  const base = (c: RouteContext) => ({
    store: c.store,
    workloadUid: 'web-1',
    authorize: allow,
    isOwnListener: c.isOwnListener,
  });
  const identity = { toString: () => 'spiffe://td/ns/default/sa/sleep' } as never;

  it('dials the pod IP and authority port when the authority matches the dialled address', () => {
    const d = decideInbound(base(ctx()), {
      authority: { host: '10.0.0.2', port: 8080 },
      localAddress: '10.0.0.2',
      remoteAddress: '10.0.0.1',
      identity,
    });
    expect(d).toMatchObject({ type: 'dial', host: '10.0.0.2', port: 8080 });
  });

  it('answers 400 on an IP mismatch, 503 for unknown services and ports, 401 on policy denial', () => {
    const c = ctx();
    expect(
      decideInbound(base(c), {
        authority: { host: '10.0.0.9', port: 80 },
        localAddress: '10.0.0.2',
        remoteAddress: '10.0.0.1',
        identity,
      }),
    ).toMatchObject({ status: 400, reason: 'ip mismatch: 10.0.0.9 != 10.0.0.2' });
    expect(
      decideInbound(base(c), {
        authority: { host: 'nope.svc', port: 80 },
        localAddress: '10.0.0.2',
        remoteAddress: '10.0.0.1',
        identity,
      }),
    ).toMatchObject({ status: 503 });
    expect(
      decideInbound(base(c), {
        authority: { host: 'web.default.svc', port: 81 },
        localAddress: '10.0.0.2',
        remoteAddress: '10.0.0.1',
        identity,
      }),
    ).toMatchObject({ status: 503 });
    const deny = {
      ...base(c),
      authorize: () => ({ allowed: false, reason: 'explicitly denied by: default/no' }),
    };
    expect(
      decideInbound(deny, {
        authority: { host: '10.0.0.2', port: 8080 },
        localAddress: '10.0.0.2',
        remoteAddress: '10.0.0.1',
        identity,
      }),
    ).toMatchObject({
      status: 401,
      reason: 'connection closed due to policy rejection: explicitly denied by: default/no',
      upstream: { host: '10.0.0.2', port: 8080 },
    });
    expect(
      decideInbound(
        { ...base(c), workloadUid: 'gone' },
        {
          authority: { host: '10.0.0.2', port: 8080 },
          localAddress: '10.0.0.2',
          remoteAddress: '10.0.0.1',
          identity,
        },
      ),
    ).toMatchObject({ status: 503 });
  });

  it('maps a hostname authority through the service port', () => {
    const d = decideInbound(base(ctx()), {
      authority: { host: 'web.default.svc', port: 80 },
      localAddress: '10.0.0.2',
      remoteAddress: '10.0.0.1',
      identity,
    });
    expect(d).toMatchObject({
      type: 'dial',
      host: '10.0.0.2',
      port: 8080,
      serviceKey: 'default/web.default.svc',
    });
  });
});
