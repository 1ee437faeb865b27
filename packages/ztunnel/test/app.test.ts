import { createServer, type Server } from 'node:net';
import { Writable } from 'node:stream';
import type { CertificateSource, WorkloadCertificate } from '@mesh/spiffe';
import { afterEach, describe, expect, it } from 'vitest';
import type { configDump } from '../src/admin/config-dump.js';
import { resolveConfig, Ztunnel, ZtunnelError } from '../src/index.js';
import { createLogger } from '../src/logging.js';

const localXds = `
workloads:
- uid: k//Pod/default/sleep
  name: sleep
  namespace: default
  serviceAccount: sleep
  trustDomain: cluster.local
  workloadIps: ["127.0.0.1"]
  protocol: HBONE
policies:
- { name: deny-all, namespace: default, scope: Namespace, action: Deny, dryRun: false,
    rules: [[[ { notNamespaces: [!Exact nobody] } ]]] }
`;

const loopback = {
  ZTUNNEL_ADMIN_ADDRESS: '127.0.0.1:0',
  ZTUNNEL_STATS_ADDRESS: '127.0.0.1:0',
  ZTUNNEL_READINESS_ADDRESS: '127.0.0.1:0',
  ZTUNNEL_INBOUND_ADDRESS: '127.0.0.1:0',
  ZTUNNEL_INBOUND_PLAINTEXT_ADDRESS: '127.0.0.1:0',
  ZTUNNEL_OUTBOUND_ADDRESS: '127.0.0.1:0',
};

const quiet = () =>
  createLogger({
    level: 'fatal',
    format: 'json',
    destination: new Writable({ write: (_c, _e, cb) => cb() }),
  });

/** A CA that is never reached within the test: the certificate stays pending. */
class PendingSource implements CertificateSource {
  getCertificate(): Promise<WorkloadCertificate> {
    return new Promise(() => {});
  }
}

class FailingSource implements CertificateSource {
  async getCertificate(): Promise<WorkloadCertificate> {
    throw new Error('connect ECONNREFUSED 127.0.0.1:15012');
  }
}

const running: Ztunnel[] = [];
const servers: Server[] = [];
afterEach(async () => {
  for (const z of running.splice(0)) await z.close();
  for (const s of servers.splice(0)) s.close();
});

async function start(env: Record<string, string>, source: CertificateSource = new PendingSource()) {
  const config = resolveConfig({
    env: { PROXY_WORKLOAD_INFO: 'default/sleep/sleep', LOCAL_XDS: localXds, ...loopback, ...env },
  });
  const zt = await Ztunnel.start({ config, certificateSource: source, logger: quiet() });
  running.push(zt);
  return zt;
}

const url = (a: { address: string; port: number }, path: string) =>
  `http://${a.address}:${a.port}${path}`;

describe('Ztunnel servers', () => {
  it('reports not ready while the certificate is pending, naming what is pending', async () => {
    const zt = await start({});
    const res = await fetch(url(zt.addresses.readiness, '/healthz/ready'));
    expect(res.status).toBe(500);
    expect(await res.text()).toBe(
      'not ready, pending: certificate spiffe://cluster.local/ns/default/sa/sleep\n',
    );
  });

  it('serves config_dump with workloads, policies and certificate state', async () => {
    const zt = await start({}, new FailingSource());
    await new Promise((r) => setTimeout(r, 20));
    const dump = (await (
      await fetch(url(zt.addresses.admin, '/config_dump'))
    ).json()) as ReturnType<typeof configDump>;
    expect(dump.workloads[0]).toMatchObject({
      uid: 'k//Pod/default/sleep',
      workloadIps: ['127.0.0.1'],
      protocol: 'HBONE',
      status: 'Healthy',
    });
    expect(dump.policies[0]).toMatchObject({
      name: 'deny-all',
      scope: 'Namespace',
      action: 'Deny',
      dryRun: false,
    });
    expect(dump.policies[0].rules[0][0][0].notNamespaces).toEqual([{ Exact: 'nobody' }]);
    expect(dump.certificates).toEqual([
      {
        identity: 'spiffe://cluster.local/ns/default/sa/sleep',
        state: 'Unavailable: connect ECONNREFUSED 127.0.0.1:15012',
        certChain: [],
        rootCerts: [],
      },
    ]);
    expect(dump.config.proxyMode).toBe('dedicated');
  });

  it('reads and sets log levels on /logging', async () => {
    const zt = await start({});
    const admin = zt.addresses.admin;
    expect(await (await fetch(url(admin, '/logging'))).text()).toContain(
      'current log level is fatal',
    );
    const set = await fetch(url(admin, '/logging?level=debug'), { method: 'POST' });
    expect(set.status).toBe(200);
    expect(zt.logger.level).toBe('debug');
    const bad = await fetch(url(admin, '/logging?level=loud'), { method: 'POST' });
    expect(bad.status).toBe(400);
    expect(await bad.text()).toContain('"loud" is not one of');
    expect(zt.logger.level).toBe('debug');
  });

  it('serves istio_build on /metrics and /stats/prometheus', async () => {
    const zt = await start({});
    for (const path of ['/metrics', '/stats/prometheus']) {
      const body = await (await fetch(url(zt.addresses.stats, path))).text();
      expect(body).toContain('istio_build{component="ztunnel",tag="0.1.0"} 1');
    }
  });

  it('asks its owner to shut down on POST /quitquitquit and then fails readiness', async () => {
    const zt = await start({});
    const quit = new Promise<void>((r) => zt.once('quit', r));
    expect((await fetch(url(zt.addresses.admin, '/quitquitquit'))).status).toBe(405);
    expect((await fetch(url(zt.addresses.admin, '/quitquitquit'), { method: 'POST' })).status).toBe(
      200,
    );
    await quit;
    zt.readiness.drain();
    const res = await fetch(url(zt.addresses.readiness, '/healthz/ready'));
    expect(await res.text()).toMatch(/^not ready, pending: draining/);
  });

  it('fails to start with a clear error when a port is in use, leaving nothing listening', async () => {
    const blocker = createServer();
    servers.push(blocker);
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const port = (blocker.address() as { port: number }).port;
    const err = await start({ ZTUNNEL_ADMIN_ADDRESS: `127.0.0.1:${port}` }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ZtunnelError);
    expect((err as ZtunnelError).code).toBe('ERR_ZTUNNEL_LISTEN_FAILED');
    expect((err as ZtunnelError).message).toContain(
      `admin server cannot listen on 127.0.0.1:${port}: EADDRINUSE`,
    );
  });

  it('refuses to start when the dedicated workload is in no configuration source', async () => {
    const err = await start({ PROXY_WORKLOAD_INFO: 'default/ghost/ghost' }).catch(
      (e: unknown) => e,
    );
    expect((err as ZtunnelError).code).toBe('ERR_ZTUNNEL_WORKLOAD_UNKNOWN');
    expect((err as ZtunnelError).message).toContain('default/ghost/ghost');
  });
});
