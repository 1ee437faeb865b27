import { spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { main } from '../src/index.js';
import { tmp } from './helpers/mesh.js';

function sink() {
  let text = '';
  const stream = new Writable({
    write(c: Buffer, _e, cb) {
      text += c.toString();
      cb();
    },
  });
  return { stream, text: () => text };
}

const workload =
  'workloads:\n- { uid: w, name: sleep, namespace: default, serviceAccount: sleep, trustDomain: cluster.local, workloadIps: ["127.0.0.2"], protocol: HBONE }\n';

/** The CLI as a process serving the `workload` on loopback, its CA directory under `dir`. */
function spawnCli(dir: string, env: Record<string, string> = {}) {
  const entry = fileURLToPath(new URL('../src/main.ts', import.meta.url));
  return spawn(process.execPath, ['--conditions=@mesh/source', '--import', 'tsx', entry], {
    env: {
      ...process.env,
      PROXY_WORKLOAD_INFO: 'default/sleep/sleep',
      LOCAL_XDS: workload,
      ZTUNNEL_CA_DIR: join(dir, 'ca'),
      ZTUNNEL_ADMIN_ADDRESS: '127.0.0.1:0',
      ZTUNNEL_STATS_ADDRESS: '127.0.0.1:0',
      ZTUNNEL_READINESS_ADDRESS: '127.0.0.1:0',
      ZTUNNEL_INBOUND_ADDRESS: '127.0.0.2:0',
      ZTUNNEL_INBOUND_PLAINTEXT_ADDRESS: '127.0.0.2:0',
      ZTUNNEL_OUTBOUND_ADDRESS: '127.0.0.2:0',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

describe('ztunnel CLI', () => {
  it('exits 2 and lists every problem when the local config file is invalid', async () => {
    const dir = tmp('zt-cli-');
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, 'workloads:\n- { namespace: a, workloadIps: [nope], color: blue }\n');
    const err = sink();
    const code = await main(['--workload-info', 'a/b/c', '--local-xds-path', file], {
      env: { ZTUNNEL_CA_DIR: join(dir, 'ca') },
      stderr: err.stream,
      stdout: sink().stream,
    });
    expect(code).toBe(2);
    expect(err.text()).toContain('workloads[0].workloadIps[0]: "nope" is not an IP address');
    expect(err.text()).toContain('workloads[0]: unknown key "color"');
  });

  it('exits 2 on a bad environment value and on an unknown flag', async () => {
    const err = sink();
    expect(
      await main([], {
        env: {
          SECRET_TTL: 'forever',
          LOCAL_XDS: workload,
          PROXY_WORKLOAD_INFO: 'default/sleep/sleep',
        },
        stderr: err.stream,
      }),
    ).toBe(2);
    expect(err.text()).toContain('SECRET_TTL: "forever" is not a duration');
    expect(
      await main(['--no-such-flag'], { env: {}, stderr: sink().stream, stdout: sink().stream }),
    ).toBe(2);
  });

  it('prints the resolved settings with `config`, flags winning over the environment', async () => {
    const out = sink();
    const code = await main(
      [
        'config',
        '--trust-domain',
        'flag.td',
        '--local-xds',
        workload,
        '--workload-info',
        'default/sleep/sleep',
      ],
      {
        env: { TRUST_DOMAIN: 'env.td', ZTUNNEL_ADMIN_ADDRESS: '127.0.0.1:0' },
        stdout: out.stream,
      },
    );
    expect(code).toBe(0);
    const printed = JSON.parse(out.text());
    expect(printed).toMatchObject({
      trustDomain: 'flag.td',
      adminAddress: '127.0.0.1:0',
      localXds: '<inline>',
      proxyMode: 'dedicated',
    });
  });

  it('exits 1 with the missing capability when ENABLE_ORIG_SRC=true cannot be honoured, before the CA directory is created', async () => {
    const dir = tmp('zt-cli-');
    // A platform without transparent sockets, as @mesh/redirect reports it off Linux.
    const child = spawnCli(dir, { MESH_REDIRECT_FORCE_UNSUPPORTED: '1', ENABLE_ORIG_SRC: 'true' });
    let err = '';
    child.stderr.on('data', (d) => {
      err += d;
    });
    const code = await new Promise<number | null>((r) => child.once('exit', r));
    expect(code).toBe(1);
    expect(err).toContain(
      "ztunnel: ENABLE_ORIG_SRC=true, but this process cannot connect from the client's address: native addon unavailable: the addon was disabled by MESH_REDIRECT_FORCE_UNSUPPORTED=1",
    );
    expect(existsSync(join(dir, 'ca'))).toBe(false);
  }, 30_000);

  it('runs as a process and exits 0 after draining on SIGTERM', async () => {
    const dir = tmp('zt-cli-');
    const child = spawnCli(dir);
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no start: ${out}`)), 20_000);
      child.stdout.on('data', () => {
        if (out.includes('"ztunnel started"')) {
          clearTimeout(t);
          resolve();
        }
      });
    });
    const started = JSON.parse(out.split('\n').find((l) => l.includes('"ztunnel started"'))!);
    const ready = started.addresses.readiness as string;
    // Wait for the certificate, then check readiness says so.
    let status = 0;
    for (let i = 0; i < 100 && status !== 200; i++) {
      status = (await fetch(`http://${ready}/healthz/ready`)).status;
      if (status !== 200) await new Promise((r) => setTimeout(r, 50));
    }
    expect(status).toBe(200);
    child.kill('SIGTERM');
    const code = await new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
    expect(code).toBe(0);
    expect(out).toContain('"msg":"draining"');
    expect(out).toContain('"msg":"ztunnel stopped"');
  }, 30_000);
});
