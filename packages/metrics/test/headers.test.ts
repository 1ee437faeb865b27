import { describe, expect, it } from 'vitest';
import {
  encodeBaggage,
  forwardedHost,
  parseBaggage,
  parseForwarded,
  workloadBaggage,
} from '../src/index.js';
import { echo } from './fixtures.js';

describe('baggage', () => {
  it('parses the members ztunnel sends, whatever the workload kind', () => {
    expect(
      parseBaggage(
        'k8s.cluster.name=K1,k8s.namespace.name=NS1,k8s.deployment.name=N1,service.name=N2,service.version=V1,cloud.region=R,cloud.availability_zone=Z',
      ),
    ).toEqual({
      clusterId: 'K1',
      namespace: 'NS1',
      workloadName: 'N1',
      serviceName: 'N2',
      revision: 'V1',
      region: 'R',
      zone: 'Z',
    });
    for (const kind of ['cronjob', 'pod', 'job']) {
      expect(parseBaggage(`k8s.${kind}.name=x`).workloadName).toBe('x');
    }
  });

  it('merges repeated headers, skips empty values, unknown keys and malformed members', () => {
    expect(
      parseBaggage([
        'k8s.cluster.name=K1',
        'k8s.namespace.name=, junk, other.key=1',
        ' service.name = svc ;prop=1',
      ]),
    ).toEqual({ clusterId: 'K1', serviceName: 'svc' });
    expect(parseBaggage(undefined)).toEqual({});
    expect(parseBaggage('')).toEqual({});
  });

  it('encodes in ztunnel order with empty fields omitted, and round-trips', () => {
    const header = workloadBaggage(echo);
    expect(header).toBe(
      'k8s.cluster.name=east,k8s.namespace.name=echo,k8s.deployment.name=echo-v2,service.name=echo,service.version=v2,cloud.region=eu-west1,cloud.availability_zone=eu-west1-b',
    );
    const b = { clusterId: 'c', namespace: 'ns', workloadName: 'w' };
    expect(encodeBaggage(b, 'job')).toBe('k8s.cluster.name=c,k8s.namespace.name=ns,k8s.job.name=w');
    expect(parseBaggage(encodeBaggage(b, 'job'))).toEqual(b);
    expect(encodeBaggage({}, 'pod')).toBe('');
  });
});

describe('Forwarded', () => {
  it('reads host= from the header ztunnel sends (quoted for with port)', () => {
    expect(forwardedHost('for="10.0.0.1:43210";host=echo.echo.svc.cluster.local')).toBe(
      'echo.echo.svc.cluster.local',
    );
    expect(forwardedHost('for="10.0.0.1:43210"')).toBeUndefined();
    expect(forwardedHost(undefined)).toBeUndefined();
  });

  it('handles several elements, quoted strings with escapes, case and junk', () => {
    expect(parseForwarded('For="[2001:db8::1]:80";Host="a\\"b", for=1.2.3.4;proto=https')).toEqual([
      { for: '[2001:db8::1]:80', host: 'a"b' },
      { for: '1.2.3.4', proto: 'https' },
    ]);
    expect(forwardedHost(['for=x', 'host=second'])).toBe('second');
    expect(parseForwarded(';;,,=,host')).toEqual([]);
    expect(parseForwarded('host="unterminated')).toEqual([{ host: 'unterminated' }]);
  });
});
