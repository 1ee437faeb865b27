import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { resolveConfig, ZtunnelError } from '../src/index.js';

const base = { PROXY_WORKLOAD_INFO: 'default/sleep/sleep', LOCAL_XDS: 'workloads: []' };

describe('resolveConfig', () => {
  it('applies ztunnel defaults when nothing is set', () => {
    const c = resolveConfig({ env: base });
    expect(c.proxyMode).toBe('dedicated');
    expect(c.secretTtl).toBe(86_400_000);
    expect(c.poolMaxStreamsPerConnection).toBe(100);
    expect(c.poolUnusedReleaseTimeout).toBe(300_000);
    expect(c.http2StreamWindowSize).toBe(4_194_304);
    expect(c.http2ConnectionWindowSize).toBe(16_777_216);
    expect(c.http2FrameSize).toBe(1_048_576);
    expect(c.connectionTerminationDeadline).toBe(5000);
    expect(c.clusterId).toBe('Kubernetes');
    expect(c.trustDomain).toBe('cluster.local');
    expect(c.enableSocks5).toBe(false);
    expect(c.packetMark).toBeUndefined();
    expect(c.xdsAddress).toBeUndefined();
    expect(c.inboundAddress).toEqual({ host: '::', port: 15008 });
    expect(c.adminAddress).toEqual({ host: '127.0.0.1', port: 15000 });
    expect(c.workloadInfo).toEqual({
      namespace: 'default',
      name: 'sleep',
      serviceAccount: 'sleep',
    });
  });

  it('reads typed environment values', () => {
    const c = resolveConfig({
      env: {
        ...base,
        SECRET_TTL: '1h30m',
        PACKET_MARK: '0x539',
        HTTP2_FRAME_SIZE: '64Ki',
        UNSTABLE_ENABLE_SOCKS5: 'true',
        IPV6_ENABLED: 'false',
        ZTUNNEL_OUTBOUND_ADDRESS: '[::1]:0',
        ISTIO_META_DNS_CAPTURE: 'true',
        CLUSTER_ID: 'c1',
        ISTIO_META_CLUSTER_ID: 'c2',
      },
    });
    expect(c.secretTtl).toBe(5_400_000);
    expect(c.packetMark).toBe(1337);
    expect(c.http2FrameSize).toBe(65536);
    expect(c.enableSocks5).toBe(true);
    expect(c.inboundAddress).toEqual({ host: '0.0.0.0', port: 15008 });
    expect(c.outboundAddress).toEqual({ host: '::1', port: 0 });
    expect(c.proxyMetadata).toMatchObject({ DNS_CAPTURE: 'true', CLUSTER_ID: 'c2' });
    expect(c.clusterId).toBe('c2');
  });

  it('lets a flag beat the environment, and the environment beat the settings file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'zt-cfg-'));
    const file = join(dir, 'settings.yaml');
    writeFileSync(file, 'trustDomain: file.td\nclusterId: from-file\nsecretTtl: 10m\n');
    const c = resolveConfig({
      env: { ...base, TRUST_DOMAIN: 'env.td', SECRET_TTL: '20m' },
      flags: { secretTtl: '30m' },
      settingsFile: file,
    });
    expect(c.secretTtl).toBe(1_800_000);
    expect(c.trustDomain).toBe('env.td');
    expect(c.clusterId).toBe('from-file');
  });

  it('reports every bad value at once with the variable that carried it', () => {
    let err: unknown;
    try {
      resolveConfig({
        env: {
          ...base,
          SECRET_TTL: 'soon',
          POOL_MAX_STREAMS_PER_CONNECTION: '-3',
          ZTUNNEL_ADMIN_ADDRESS: 'nowhere',
          LOCAL_XDS_PATH: '/x.yaml',
        },
      });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ZtunnelError);
    const e = err as ZtunnelError;
    expect(e.code).toBe('ERR_ZTUNNEL_CONFIG_INVALID');
    expect(e.problems).toHaveLength(4);
    expect(e.message).toContain('SECRET_TTL: "soon" is not a duration');
    expect(e.message).toContain('POOL_MAX_STREAMS_PER_CONNECTION');
    expect(e.message).toContain('ZTUNNEL_ADMIN_ADDRESS');
    expect(e.message).toContain('mutually exclusive');
  });

  it('requires the workload in dedicated mode and refuses shared mode for now', () => {
    expect(() => resolveConfig({ env: { LOCAL_XDS: 'x: 1' } })).toThrow(/PROXY_WORKLOAD_INFO/);
    expect(() => resolveConfig({ env: { ...base, PROXY_MODE: 'shared' } })).toThrow(
      /not implemented/,
    );
  });

  it('rejects unknown keys in the settings file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'zt-cfg-'));
    const file = join(dir, 'settings.yaml');
    writeFileSync(file, 'trustDomian: typo\n');
    expect(() => resolveConfig({ env: base, settingsFile: file })).toThrow(
      /unknown key "trustDomian"/,
    );
  });
});
