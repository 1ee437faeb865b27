import { fileURLToPath } from 'node:url';
import { addressType, authorizationType } from '@mesh/xds-client';
import { FakeControlPlane } from '@mesh/xds-client/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { runExample, startExample } from '../../run-example.js';
import { initialAddresses, initialPolicies, service } from '../src/sample-mesh.js';

const dir = fileURLToPath(new URL('..', import.meta.url));

describe('xds-watch', () => {
  let cp: FakeControlPlane | undefined;
  afterEach(async () => {
    await cp?.close();
    cp = undefined;
  });

  it('prints the built-in mesh, then each scripted change, and exits 0', async () => {
    const { code, stdout, stderr } = await runExample(dir);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    const lines = stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^# connected to http:\/\/127\.0\.0\.1:\d+ \(attempt 1\)$/);
    // Order across types is the order the responses arrived in; within the story it is fixed.
    const storyStart = lines.indexOf('# a second api replica starts');
    expect(lines.slice(1, storyStart).sort()).toEqual(
      [
        '+ service shop/api.shop.svc.cluster.local vips=10.96.0.20 ports=80->8080',
        expect.stringMatching(
          /^\+ workload shop\/api-7f9c ips=10\.1\.0\.5 identity=spiffe:\/\/cluster\.local\/ns\/shop\/sa\/api /,
        ),
        expect.stringMatching(/^\+ workload shop\/frontend-5d2a ips=10\.1\.0\.7 /),
        '+ policy shop/api-allow-frontend ALLOW scope=WORKLOAD_SELECTOR 1 rule',
        '# in sync: 3 addresses, 1 policies',
      ].sort(),
    );
    expect(lines.slice(storyStart)).toEqual([
      '# a second api replica starts',
      expect.stringMatching(/^\+ workload shop\/api-2b81 ips=10\.1\.0\.6 /),
      '# the policy is switched to dry-run',
      '~ policy shop/api-allow-frontend ALLOW scope=WORKLOAD_SELECTOR dry-run 1 rule',
      '    was policy shop/api-allow-frontend ALLOW scope=WORKLOAD_SELECTOR 1 rule',
      '# the first replica goes away',
      expect.stringMatching(/^- workload shop\/api-7f9c ips=10\.1\.0\.5 /),
    ]);
  });

  it('follows a control plane given with --address until interrupted', async () => {
    cp = await FakeControlPlane.start();
    for (const a of initialAddresses) cp.set(addressType, a);
    for (const p of initialPolicies) cp.set(authorizationType, p);
    const run = startExample(dir, ['--address', cp.address, '--pod-name', 'watcher-1']);
    await run.waitFor(/# in sync: 3 addresses, 1 policies\n/);

    // The client identified itself the way ztunnel does.
    expect(cp.streams[0]?.node?.id).toBe(
      'ztunnel~127.0.0.1~watcher-1.istio-system~istio-system.svc.cluster.local',
    );

    const db = service({
      name: 'db',
      namespace: 'shop',
      addresses: [{ network: '', address: '10.96.0.30' }],
      ports: [{ servicePort: 5432, targetPort: 5432, appProtocol: 'TCP' }],
    });
    cp.set(addressType, db);
    await run.waitFor(
      /\+ service shop\/db\.shop\.svc\.cluster\.local vips=10\.96\.0\.30 ports=5432->5432\n/,
    );
    cp.remove(authorizationType, ['shop/api-allow-frontend']);
    await run.waitFor(/- policy shop\/api-allow-frontend ALLOW/);

    run.child.kill('SIGINT');
    expect((await run.exited).code).toBe(0);
  });

  it('prints what is held and exits with --once', async () => {
    cp = await FakeControlPlane.start();
    for (const a of initialAddresses) cp.set(addressType, a);
    const { code, stdout } = await runExample(dir, ['--address', cp.address, '--once']);
    expect(code).toBe(0);
    expect(stdout).toContain('# in sync: 3 addresses, 0 policies');
    expect(stdout).not.toContain('policy ');
  });

  it('reports a control plane it cannot reach and keeps retrying', async () => {
    const run = startExample(dir, ['--address', 'http://127.0.0.1:1']);
    await new Promise<void>((resolve) => {
      const t = setInterval(() => {
        if (/# disconnected \(ConnectionError\)/.test(run.stderr)) {
          clearInterval(t);
          resolve();
        }
      }, 50);
    });
    run.child.kill('SIGINT');
    expect((await run.exited).code).toBe(0);
    expect(run.stdout).not.toContain('# in sync');
  });
});
