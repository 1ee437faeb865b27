/**
 * Two `@mesh/ztunnel` processes as on two nodes, without root: each node is a loopback address
 * (127.X.Y.2 for the client node, 127.X.Y.3 for the server node; the whole of 127.0.0.0/8
 * reaches `lo`), so both ztunnels keep ztunnel's well-known ports (15008, 15001, 15006, 15080,
 * 15000, 15020, 15021) on their own address. Each runs in dedicated mode for one workload whose
 * IP is its node address, from one local config file (ztunnel's `LOCAL_XDS_PATH` format) and
 * one embedded-CA directory (Istio's plug-in CA layout) shared by both, so they trust each other.
 *
 * The client application enters through the client ztunnel's SOCKS5 listener
 * (`UNSTABLE_ENABLE_SOCKS5`), which tunnels over HBONE to the server ztunnel's 15008, which
 * dials the server workload.
 */

import { existsSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { get } from 'node:http';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type ManagedProcess, nodeArgs, spawnManaged } from './children.js';
import type { MeteredProcess, TrafficPath } from './suite.js';

/** The `packages/ztunnel` directory of this repository. */
export const ZTUNNEL_PACKAGE_DIR = fileURLToPath(
  new URL('../../../packages/ztunnel/', import.meta.url),
);

/** Well-known ztunnel ports (ztunnel.md §0, Appendix A). */
export const ZTUNNEL_PORTS = {
  admin: 15000,
  outbound: 15001,
  inboundPlaintext: 15006,
  inbound: 15008,
  stats: 15020,
  readiness: 15021,
  socks5: 15080,
} as const;

/**
 * Find the ztunnel entry point: the TypeScript source the package's `bin` points at (run with
 * the `@mesh/source` condition), or a conventional `src/main.ts` / `src/cli.ts`. Returns
 * undefined while `packages/ztunnel` has no runnable entry point.
 */
export function findZtunnelEntry(dir = ZTUNNEL_PACKAGE_DIR): string | undefined {
  const candidates: string[] = [];
  try {
    const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as {
      bin?: string | Record<string, string>;
    };
    const bins = typeof pkg.bin === 'string' ? [pkg.bin] : Object.values(pkg.bin ?? {});
    for (const b of bins) {
      candidates.push(b.replace(/^\.?\/?dist\//, 'src/').replace(/\.m?js$/, '.ts'));
    }
  } catch {}
  candidates.push('src/main.ts', 'src/cli.ts', 'src/bin.ts');
  for (const c of candidates) {
    const path = join(dir, c);
    if (existsSync(path)) return path;
  }
  return undefined;
}

export interface ZtunnelWorkload {
  /** Pod name, e.g. `client-0`. */
  name: string;
  namespace: string;
  serviceAccount: string;
  /** The workload's (and its node's) IP. */
  ip: string;
  node: string;
}

/** The local config (ztunnel §3 format, YAML is a superset of JSON) with both workloads. */
export function localConfig(workloads: ZtunnelWorkload[], trustDomain = 'cluster.local'): string {
  const doc = {
    workloads: workloads.map((w) => ({
      uid: `bench//v1/Pod/${w.namespace}/${w.name}`,
      name: w.name,
      namespace: w.namespace,
      serviceAccount: w.serviceAccount,
      trustDomain,
      workloadIps: [w.ip],
      protocol: 'HBONE',
      node: w.node,
    })),
  };
  return `${JSON.stringify(doc, null, 2)}\n`;
}

/**
 * Environment of one ztunnel: Istio's variables (Appendix A) for dedicated mode from a local
 * file with xDS off, plus `@mesh/ztunnel`'s extensions (`ZTUNNEL_*_ADDRESS` listener addresses,
 * `ZTUNNEL_CA_DIR` embedded CA directory; see its configuration reference).
 */
export function ztunnelEnv(options: {
  workload: ZtunnelWorkload;
  configPath: string;
  caDir: string;
  socks5: boolean;
}): Record<string, string> {
  const { workload: w } = options;
  const ip = w.ip;
  return {
    PROXY_MODE: 'dedicated',
    PROXY_WORKLOAD_INFO: `${w.namespace}/${w.name}/${w.serviceAccount}`,
    LOCAL_XDS_PATH: options.configPath,
    XDS_ADDRESS: '',
    TRUST_DOMAIN: 'cluster.local',
    POD_NAME: w.name,
    POD_NAMESPACE: w.namespace,
    SERVICE_ACCOUNT: w.serviceAccount,
    NODE_NAME: w.node,
    INSTANCE_IP: ip,
    UNSTABLE_ENABLE_SOCKS5: String(options.socks5),
    IPV6_ENABLED: 'false',
    ZTUNNEL_CA_DIR: options.caDir,
    ZTUNNEL_ADMIN_ADDRESS: `${ip}:${ZTUNNEL_PORTS.admin}`,
    ZTUNNEL_OUTBOUND_ADDRESS: `${ip}:${ZTUNNEL_PORTS.outbound}`,
    ZTUNNEL_INBOUND_PLAINTEXT_ADDRESS: `${ip}:${ZTUNNEL_PORTS.inboundPlaintext}`,
    ZTUNNEL_INBOUND_ADDRESS: `${ip}:${ZTUNNEL_PORTS.inbound}`,
    ZTUNNEL_STATS_ADDRESS: `${ip}:${ZTUNNEL_PORTS.stats}`,
    ZTUNNEL_READINESS_ADDRESS: `${ip}:${ZTUNNEL_PORTS.readiness}`,
    ZTUNNEL_SOCKS5_ADDRESS: `${ip}:${ZTUNNEL_PORTS.socks5}`,
    LOG_FORMAT: 'json',
  };
}

async function ready(ip: string, signal?: AbortSignal): Promise<boolean> {
  return await new Promise<boolean>((resolve) => {
    const req = get(
      { host: ip, port: ZTUNNEL_PORTS.readiness, path: '/healthz/ready', timeout: 1000, signal },
      (res) => {
        res.resume();
        resolve(res.statusCode === 200);
      },
    );
    req.on('error', () => resolve(false));
    req.on('timeout', () => req.destroy());
  });
}

export interface ZtunnelPair {
  client: ManagedProcess;
  server: ManagedProcess;
  clientWorkload: ZtunnelWorkload;
  serverWorkload: ZtunnelWorkload;
  /** Where the client application's SOCKS5 requests go. */
  socks5: { host: string; port: number };
  processes: MeteredProcess[];
  close(): Promise<void>;
}

export interface ZtunnelPairOptions {
  entry: string;
  dir: string;
  /** Directory in Istio's plug-in CA layout shared by both ztunnels. */
  caDir: string;
  /** Client node/workload IP; the server uses the next address. */
  clientIp: string;
  serverIp: string;
  profile?: { dir: string };
  signal?: AbortSignal;
}

/** A random 127.X.Y.0/24 for one run, so parallel runs and other tests on 127.0.0.1 don't collide. */
export function loopbackNodes(): { clientIp: string; serverIp: string } {
  const x = 100 + Math.floor(Math.random() * 100);
  const y = 1 + Math.floor(Math.random() * 250);
  return { clientIp: `127.${x}.${y}.2`, serverIp: `127.${x}.${y}.3` };
}

/** Start both ztunnels and wait until both report ready (`/healthz/ready` = 200). */
export async function startZtunnelPair(options: ZtunnelPairOptions): Promise<ZtunnelPair> {
  const clientWorkload: ZtunnelWorkload = {
    name: 'client-0',
    namespace: 'bench',
    serviceAccount: 'client',
    ip: options.clientIp,
    node: 'node-client',
  };
  const serverWorkload: ZtunnelWorkload = {
    name: 'server-0',
    namespace: 'bench',
    serviceAccount: 'server',
    ip: options.serverIp,
    node: 'node-server',
  };
  const configPath = join(options.dir, 'ztunnel-local.yaml');
  await writeFile(configPath, localConfig([clientWorkload, serverWorkload]));
  const spawnOne = (role: 'client' | 'server', w: ZtunnelWorkload) =>
    spawnManaged(
      process.execPath,
      nodeArgs(options.entry, [], {
        profile: options.profile
          ? { dir: options.profile.dir, name: `ztunnel-${role}` }
          : undefined,
      }),
      {
        name: `${role} ztunnel`,
        env: {
          ...process.env,
          ...ztunnelEnv({
            workload: w,
            configPath,
            caDir: options.caDir,
            socks5: role === 'client',
          }),
        },
      },
    );
  const server = spawnOne('server', serverWorkload);
  const client = spawnOne('client', clientWorkload);
  const close = async () => {
    await Promise.all([client.stop({ graceMs: 8000 }), server.stop({ graceMs: 8000 })]);
  };
  try {
    const deadline = Date.now() + 30_000;
    for (const [proc, w] of [
      [server, serverWorkload],
      [client, clientWorkload],
    ] as const) {
      while (!(await ready(w.ip, options.signal))) {
        options.signal?.throwIfAborted();
        if (!proc.running)
          throw new Error(`${proc.name} exited (${await proc.exited}):\n${proc.tail()}`);
        if (Date.now() > deadline)
          throw new Error(`${proc.name} not ready after 30 s:\n${proc.tail()}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  } catch (err) {
    await close();
    throw err;
  }
  return {
    client,
    server,
    clientWorkload,
    serverWorkload,
    socks5: { host: options.clientIp, port: ZTUNNEL_PORTS.socks5 },
    processes: [
      { name: 'client ztunnel', pid: client.pid },
      { name: 'server ztunnel', pid: server.pid },
    ],
    close,
  };
}

/**
 * Inbound connections the server ztunnel counted as mutual TLS from the client workload's
 * identity (`istio_tcp_connections_opened_total`, reporter `destination`): proof that the
 * traffic went through HBONE and not around it.
 */
export async function inboundMutualTlsConnections(
  pair: ZtunnelPair,
  signal?: AbortSignal,
): Promise<number> {
  const res = await fetch(`http://${pair.serverWorkload.ip}:${ZTUNNEL_PORTS.stats}/metrics`, {
    signal,
  });
  if (!res.ok) throw new Error(`server ztunnel /metrics answered ${res.status}`);
  const principal = `spiffe://cluster.local/ns/${pair.clientWorkload.namespace}/sa/${pair.clientWorkload.serviceAccount}`;
  let total = 0;
  for (const line of (await res.text()).split('\n')) {
    if (
      line.startsWith('istio_tcp_connections_opened_total{') &&
      line.includes('reporter="destination"') &&
      line.includes('connection_security_policy="mutual_tls"') &&
      line.includes(`source_principal="${principal}"`)
    ) {
      total += Number(line.slice(line.lastIndexOf(' ') + 1));
    }
  }
  return total;
}

/**
 * The ztunnel pair as a {@link TrafficPath}: the client connects from its workload IP through
 * the client ztunnel's SOCKS5 listener to a server on the server workload's IP.
 */
export function ztunnelPath(pair: ZtunnelPair, name = 'ztunnel ×2'): TrafficPath {
  return {
    name,
    setup: async (server) => ({
      dial: { target: server, socks5: pair.socks5, localAddress: pair.clientWorkload.ip },
      processes: pair.processes,
      close: async () => {},
    }),
  };
}
