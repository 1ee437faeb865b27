import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveConfig, Ztunnel, ZtunnelError } from '@mesh/ztunnel';

const dir = mkdtempSync(join(tmpdir(), 'ztunnel-'));
// The same settings as the binary's environment variables (flags and a settings file too).
const config = resolveConfig({
  env: {
    PROXY_WORKLOAD_INFO: 'default/httpbin/httpbin', // dedicated mode: one workload
    LOCAL_XDS: `
workloads:
- uid: local//Pod/default/httpbin
  name: httpbin
  namespace: default
  serviceAccount: httpbin
  workloadIps: ["127.0.0.1"]
  protocol: HBONE
`,
    ZTUNNEL_CA_DIR: join(dir, 'cacerts'), // embedded CA, created on first run
    ZTUNNEL_INBOUND_ADDRESS: '127.0.0.1:0', // port 0: any free port
    ZTUNNEL_INBOUND_PLAINTEXT_ADDRESS: '127.0.0.1:0',
    ZTUNNEL_OUTBOUND_ADDRESS: '127.0.0.1:0',
    ZTUNNEL_ADMIN_ADDRESS: '127.0.0.1:0',
    ZTUNNEL_STATS_ADDRESS: '127.0.0.1:0',
    ZTUNNEL_READINESS_ADDRESS: '127.0.0.1:0',
    LOG_LEVEL: 'warn',
  },
});
const zt = await Ztunnel.start({ config });

const ready = zt.addresses.readiness;
for (let i = 0; i < 100 && !zt.readiness.ready; i++) await new Promise((r) => setTimeout(r, 20));
const res = await fetch(`http://127.0.0.1:${ready.port}/healthz/ready`);
console.log('readiness:', res.status, (await res.text()).trim()); // 200 ready

const admin = zt.addresses.admin;
const dump = (await (await fetch(`http://127.0.0.1:${admin.port}/config_dump`)).json()) as {
  workloads: { name: string }[];
};
console.log(
  'workloads:',
  dump.workloads.map((w) => w.name),
); // [ 'httpbin' ]

// Bad settings are a ZtunnelError with a stable code (exit status 2 for the binary).
try {
  resolveConfig({ env: { PROXY_WORKLOAD_INFO: 'not-three-parts' } });
} catch (err) {
  if (err instanceof ZtunnelError) console.log(err.code); // ERR_ZTUNNEL_CONFIG_INVALID
}

await zt.close(); // graceful: readiness fails, listeners stop, tunnels drain
rmSync(dir, { recursive: true, force: true });
