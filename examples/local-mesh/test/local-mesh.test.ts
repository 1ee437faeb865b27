import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseLocalConfig } from '@mesh/ztunnel';
import { describe, expect, it } from 'vitest';
import { runExample, startExample } from '../../run-example.js';
import { meshFile, VIP } from '../src/mesh.js';
import { httpGetViaSocks } from '../src/socks5.js';

const dir = fileURLToPath(new URL('..', import.meta.url));

describe('local-mesh', () => {
  it('mesh.yaml is a valid ztunnel local config with the three workloads, the service and the policies', () => {
    const config = parseLocalConfig(readFileSync(meshFile, 'utf8'), meshFile);
    expect(
      config.workloads.map((w) => `${w.namespace}/${w.name} ${w.addresses.join(',')}`),
    ).toEqual([
      'default/sleep 127.0.20.2',
      'default/notsleep 127.0.20.3',
      'default/httpbin 127.0.20.4',
    ]);
    expect(config.services.map((s) => s.addresses.map((a) => a.address))).toEqual([[VIP]]);
    expect(config.policies.map((p) => `${p.namespace}/${p.name} ${p.action}`)).toEqual([
      'default/httpbin-allow-sleep ALLOW',
      'istio-system/istio_converted_static_strict DENY',
    ]);
  });

  it('runs the three ztunnels and every check passes', async () => {
    const { code, stdout, stderr } = await runExample(dir, ['--free-ports']);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(stdout).not.toContain('FAIL');
    expect(stdout).toMatch(
      /^ok {3}sleep -> httpbin over HBONE: HTTP\/1\.1 200 OK, \{"service":"httpbin","path":"\/get"\}$/m,
    );
    expect(stdout).toContain(
      "httpbin's ztunnel saw spiffe://cluster.local/ns/default/sa/sleep -> spiffe://cluster.local/ns/default/sa/httpbin",
    );
    expect(stdout).toMatch(
      /^ok {3}notsleep -> httpbin refused by httpbin-allow-sleep: .*allow policies exist, but none allowed$/m,
    );
    expect(stdout).toMatch(
      /^ok {3}plaintext -> httpbin refused under STRICT: .*istio_converted_static_strict$/m,
    );
    expect(stdout).toMatch(/^ok {3}httpbin reports istio_tcp_connections_opened_total for sleep$/m);
  });

  it('keeps running with --keep and applies an edited local config', async () => {
    const run = startExample(dir, ['--keep', '--free-ports']);
    try {
      const [, sleepIp, sleepPort] = await run.waitFor(/curl --socks5 ([\d.]+):(\d+) /, 40_000);
      const [, notsleepIp, notsleepPort] = await run.waitFor(
        /curl --socks5 [\d.]+:\d+ .*\n\s+curl --socks5 ([\d.]+):(\d+) /,
      );
      const [, file] = await run.waitFor(/edit (\S+) \(reloaded on save\)/);
      const sleep = { host: sleepIp, port: Number(sleepPort) };
      const notsleep = { host: notsleepIp, port: Number(notsleepPort) };
      const target = { ip: VIP, port: 80 };
      expect((await httpGetViaSocks(sleep, target, '/a')).status).toContain('200');
      await expect(httpGetViaSocks(notsleep, target, '/a')).rejects.toThrow();

      // Allow notsleep instead of sleep: the proxies reload the file.
      writeFileSync(file, readFileSync(file, 'utf8').replace('sa/sleep]', 'sa/notsleep]'));
      let allowed = false;
      for (let i = 0; i < 100 && !allowed; i++) {
        allowed = await httpGetViaSocks(notsleep, target, '/b').then(
          (r) => r.status.includes('200'),
          () => false,
        );
        if (!allowed) await new Promise((r) => setTimeout(r, 100));
      }
      expect(allowed).toBe(true);
      await expect(httpGetViaSocks(sleep, target, '/b')).rejects.toThrow();

      run.child.kill('SIGINT');
      expect((await run.exited).code).toBe(0);
    } finally {
      run.child.kill('SIGKILL');
    }
  });
});
