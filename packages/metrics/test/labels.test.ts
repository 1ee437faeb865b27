import { describe, expect, it } from 'vitest';
import {
  BASE_TRAFFIC_LABEL_NAMES,
  guessInboundService,
  inboundHboneConnection,
  inboundPlaintextConnection,
  type LabelService,
  type LabelWorkload,
  MetricsError,
  outboundConnection,
  TRAFFIC_LABEL_NAMES,
  trafficLabels,
  workloadIdentity,
} from '../src/index.js';
import { echo, echoService, namedPortService, otherService, sleep, workload } from './fixtures.js';

// Type-level proof: xds-client's shapes are accepted wherever labels take workloads/services.
const _w: LabelWorkload = sleep;
const _s: LabelService = echoService;
void _w;
void _s;

describe('trafficLabels', () => {
  it('emits every CommonTrafficLabels key in ztunnel encoding order, locality last', () => {
    const labels = trafficLabels(
      outboundConnection({ source: sleep, destination: echo, protocol: 'hbone' }),
    );
    expect(Object.keys(labels)).toEqual([...TRAFFIC_LABEL_NAMES]);
  });

  it('leaves the locality labels out when no workload information was applied', () => {
    const labels = trafficLabels({ reporter: 'destination', connectionSecurityPolicy: 'unknown' });
    expect(Object.keys(labels)).toEqual([...BASE_TRAFFIC_LABEL_NAMES]);
    for (const name of BASE_TRAFFIC_LABEL_NAMES) {
      if (
        ['reporter', 'request_protocol', 'response_flags', 'connection_security_policy'].includes(
          name,
        )
      )
        continue;
      expect(labels[name], name).toBe('unknown');
    }
    expect(labels.response_flags).toBe('-');
    expect(labels.request_protocol).toBe('tcp');
  });

  it('rejects a reporter that is not source or destination with a typed error', () => {
    expect(() =>
      trafficLabels({ reporter: 'sidecar' as 'source', connectionSecurityPolicy: 'unknown' }),
    ).toThrowError(expect.objectContaining({ code: 'ERR_METRICS_INVALID_LABEL' }));
    try {
      trafficLabels({ reporter: 'source', connectionSecurityPolicy: 'plain' as 'unknown' });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(MetricsError);
    }
  });
});

describe('outbound labels (reporter=source)', () => {
  it('fills source from the local workload and principal from our own identity over HBONE', () => {
    const labels = trafficLabels(
      outboundConnection({
        source: sleep,
        destination: echo,
        destinationService: echoService,
        protocol: 'hbone',
      }),
    );
    expect(labels).toMatchObject({
      reporter: 'source',
      source_workload: 'sleep',
      source_canonical_service: 'sleep',
      source_canonical_revision: 'v1',
      source_workload_namespace: 'default',
      source_principal: 'spiffe://cluster.local/ns/default/sa/sleep',
      source_app: 'sleep',
      source_version: 'v1',
      source_cluster: 'Kubernetes',
      destination_service: 'echo.echo.svc.cluster.local',
      destination_service_namespace: 'echo',
      destination_service_name: 'echo',
      destination_workload: 'echo-v2',
      destination_canonical_service: 'echo',
      destination_canonical_revision: 'v2',
      destination_workload_namespace: 'echo',
      destination_principal: 'spiffe://cluster.local/ns/echo/sa/echo-sa',
      destination_app: 'echo',
      destination_version: 'v2',
      destination_cluster: 'east',
      request_protocol: 'tcp',
      response_flags: '-',
      connection_security_policy: 'mutual_tls',
      source_region: 'unknown',
      source_zone: 'unknown',
      destination_region: 'eu-west1',
      destination_zone: 'eu-west1-b',
    });
  });

  it('prefers the identity of the certificate actually used as source_principal', () => {
    const labels = trafficLabels(
      outboundConnection({
        source: sleep,
        sourceIdentity: 'spiffe://corp.example/ns/default/sa/sleep',
        protocol: 'hbone',
      }),
    );
    expect(labels.source_principal).toBe('spiffe://corp.example/ns/default/sa/sleep');
  });

  it('plain TCP passthrough has no source_principal and security policy unknown', () => {
    const labels = trafficLabels(
      outboundConnection({ source: sleep, destination: echo, protocol: 'tcp' }),
    );
    expect(labels.source_principal).toBe('unknown');
    expect(labels.connection_security_policy).toBe('unknown');
    // The destination workload still names its WDS identity.
    expect(labels.destination_principal).toBe(workloadIdentity(echo));
  });

  it('through a waypoint labels the waypoint as destination and the addressed service', () => {
    const waypoint = workload({
      name: 'waypoint-abc',
      namespace: 'echo',
      workloadName: 'waypoint',
      canonicalName: 'waypoint',
      canonicalRevision: 'latest',
      serviceAccount: 'waypoint',
    });
    const labels = trafficLabels(
      outboundConnection({
        source: sleep,
        destination: waypoint,
        destinationService: echoService,
        protocol: 'hbone',
      }),
    );
    expect(labels.destination_workload).toBe('waypoint');
    expect(labels.destination_principal).toBe('spiffe://cluster.local/ns/echo/sa/waypoint');
    expect(labels.destination_service).toBe('echo.echo.svc.cluster.local');
  });

  it('double-HBONE takes destination_* from the inner peer identity and response baggage', () => {
    const labels = trafficLabels(
      outboundConnection({
        source: sleep,
        protocol: 'double-hbone',
        destinationService: echoService,
        derivedDestination: {
          identity: 'spiffe://cluster.local/ns/echo/sa/remote',
          workloadName: 'echo-remote',
          app: 'echo',
          revision: 'v9',
          namespace: 'echo',
          clusterId: 'west',
        },
      }),
    );
    expect(labels).toMatchObject({
      destination_principal: 'spiffe://cluster.local/ns/echo/sa/remote',
      destination_workload: 'echo-remote',
      destination_canonical_service: 'echo',
      destination_canonical_revision: 'v9',
      destination_cluster: 'west',
      connection_security_policy: 'mutual_tls',
    });
  });
});

describe('inbound HBONE labels (reporter=destination, 15008)', () => {
  const baggage = {
    clusterId: 'remote-cluster',
    namespace: 'baggage-ns',
    workloadName: 'baggage-wl',
    serviceName: 'baggage-svc',
    revision: 'b1',
    region: 'us-east1',
    zone: 'us-east1-c',
  };

  it('without a WDS source uses the peer certificate and baggage (source_app = workload name)', () => {
    const labels = trafficLabels(
      inboundHboneConnection({
        peerIdentity: 'spiffe://cluster.local/ns/baggage-ns/sa/client',
        baggage,
        destination: echo,
        destinationServices: [echoService],
        port: 8080,
      }),
    );
    expect(labels).toMatchObject({
      reporter: 'destination',
      source_workload: 'baggage-wl',
      source_canonical_service: 'baggage-svc',
      source_canonical_revision: 'b1',
      source_workload_namespace: 'baggage-ns',
      source_principal: 'spiffe://cluster.local/ns/baggage-ns/sa/client',
      source_app: 'baggage-wl',
      source_version: 'b1',
      source_cluster: 'remote-cluster',
      source_region: 'us-east1',
      source_zone: 'us-east1-c',
      destination_workload: 'echo-v2',
      destination_service: 'echo.echo.svc.cluster.local',
      connection_security_policy: 'mutual_tls',
    });
  });

  it('the WDS workload of the source IP overrides baggage but never the TLS principal', () => {
    const labels = trafficLabels(
      inboundHboneConnection({
        peerIdentity: 'spiffe://cluster.local/ns/default/sa/sleep',
        baggage,
        source: sleep,
        destination: echo,
        port: 8080,
      }),
    );
    expect(labels).toMatchObject({
      source_workload: 'sleep',
      source_canonical_service: 'sleep',
      source_app: 'sleep',
      source_cluster: 'Kubernetes',
      source_workload_namespace: 'default',
      source_principal: 'spiffe://cluster.local/ns/default/sa/sleep',
      // the WDS workload has no locality: ztunnel overwrites with its (empty) values
      source_region: 'unknown',
    });
  });

  it('source_principal stays unknown without a verified peer identity even if WDS knows the source', () => {
    const labels = trafficLabels(
      inboundHboneConnection({ source: sleep, destination: echo, port: 8080 }),
    );
    expect(labels.source_principal).toBe('unknown');
    expect(labels.source_workload).toBe('sleep');
  });

  it('ignores the IP-based source for requests from another network (via its gateway)', () => {
    const labels = trafficLabels(
      inboundHboneConnection({
        peerIdentity: 'spiffe://cluster.local/ns/baggage-ns/sa/client',
        baggage,
        source: sleep, // the gateway's address happened to resolve to a workload
        forwardedNetwork: 'network-2',
        localNetwork: 'network-1',
        destination: echo,
        port: 8080,
      }),
    );
    expect(labels.source_workload).toBe('baggage-wl');
    const sameNetwork = trafficLabels(
      inboundHboneConnection({
        baggage,
        source: sleep,
        forwardedNetwork: 'network-1',
        localNetwork: 'network-1',
        destination: echo,
        port: 8080,
      }),
    );
    expect(sameNetwork.source_workload).toBe('sleep');
  });

  it('picks destination_service from Forwarded host= only if it is one of the destination services', () => {
    const services = [echoService, otherService];
    const named = trafficLabels(
      inboundHboneConnection({
        destination: echo,
        destinationServices: services,
        forwardedHost: 'other.echo.svc.cluster.local',
        port: 8080,
      }),
    );
    expect(named.destination_service).toBe('other.echo.svc.cluster.local');
    expect(named.destination_service_name).toBe('other');
    const bogus = trafficLabels(
      inboundHboneConnection({
        destination: echo,
        destinationServices: services,
        forwardedHost: 'evil.example.com',
        port: 8080,
      }),
    );
    // falls back to the port guess
    expect(bogus.destination_service).toBe('echo.echo.svc.cluster.local');
  });

  it('guesses the service by target port, then by the endpoint port map for target port 0', () => {
    const services = [echoService, namedPortService, otherService];
    expect(guessInboundService(echo, services, 7070)?.name).toBe('other');
    expect(guessInboundService(echo, services, 9999)?.name).toBe('named');
    expect(guessInboundService(echo, services, 1234)).toBeUndefined();
    const labels = trafficLabels(
      inboundHboneConnection({ destination: echo, destinationServices: services, port: 1234 }),
    );
    expect(labels.destination_service).toBe('unknown');
    expect(labels.destination_service_name).toBe('unknown');
  });
});

describe('inbound plaintext labels (reporter=destination, 15006)', () => {
  it('has no principal, security policy unknown, and WDS labels for both ends', () => {
    const labels = trafficLabels(
      inboundPlaintextConnection({
        source: sleep,
        destination: echo,
        destinationServices: [echoService],
        port: 8080,
      }),
    );
    expect(labels).toMatchObject({
      reporter: 'destination',
      source_workload: 'sleep',
      source_principal: 'unknown',
      destination_workload: 'echo-v2',
      destination_principal: 'spiffe://cluster.local/ns/echo/sa/echo-sa',
      destination_service: 'echo.echo.svc.cluster.local',
      connection_security_policy: 'unknown',
    });
  });

  it('an unknown source (not in WDS) is labelled unknown', () => {
    const labels = trafficLabels(inboundPlaintextConnection({ destination: echo, port: 8080 }));
    expect(labels.source_workload).toBe('unknown');
    expect(labels.source_cluster).toBe('unknown');
    expect(labels.destination_service).toBe('unknown');
  });
});
