// The configuration of each ztunnel: what you would put in its environment.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const VIP = '10.96.0.4';
export const meshFile = fileURLToPath(new URL('../mesh.yaml', import.meta.url));

/** The three workloads, each on its own loopback address, as in mesh.yaml. */
export const workloads = [
  { name: 'httpbin', ip: '127.0.20.4' },
  { name: 'sleep', ip: '127.0.20.2' },
  { name: 'notsleep', ip: '127.0.20.3' },
] as const;

/**
 * Environment for the ztunnel serving one workload. Every variable is ztunnel's (the
 * ZTUNNEL_* ones are ours: they move listeners so three proxies fit on one host).
 */
export function ztunnelEnv(
  w: { name: string; ip: string },
  opts: { localConfig: string; caDir: string; hbonePort: number; fixedPorts: boolean },
): Record<string, string> {
  // With fixed ports each proxy listens where ztunnel would; otherwise any free port (tests).
  const at = (port: number) => `${w.ip}:${opts.fixedPorts ? port : 0}`;
  return {
    // Dedicated mode: one proxy for one workload (namespace/name/service account), listening
    // in its own network namespace (here: on the workload's own loopback address).
    PROXY_MODE: 'dedicated',
    PROXY_WORKLOAD_INFO: `default/${w.name}/${w.name}`,
    // State from the local config file instead of istiod (XDS_ADDRESS unset).
    LOCAL_XDS_PATH: opts.localConfig,
    // Certificates from the embedded CA in this directory (Istio's plug-in CA layout), shared
    // by the three proxies so they trust each other. Set CA_ADDRESS to use istiod instead.
    ZTUNNEL_CA_DIR: opts.caDir,
    TRUST_DOMAIN: 'cluster.local',
    // A SOCKS5 listener stands in for traffic capture, so no root is needed.
    UNSTABLE_ENABLE_SOCKS5: 'true',
    // Peers are dialled on this HBONE port (15008 in a cluster).
    ZTUNNEL_HBONE_PORT: String(opts.hbonePort),
    ZTUNNEL_INBOUND_ADDRESS: `${w.ip}:${opts.hbonePort}`,
    ZTUNNEL_INBOUND_PLAINTEXT_ADDRESS: at(15006),
    ZTUNNEL_OUTBOUND_ADDRESS: at(15001),
    ZTUNNEL_SOCKS5_ADDRESS: at(15080),
    ZTUNNEL_ADMIN_ADDRESS: at(15000),
    ZTUNNEL_STATS_ADDRESS: at(15020),
    ZTUNNEL_READINESS_ADDRESS: at(15021),
    CONNECTION_TERMINATION_DEADLINE: '1s',
    LOG_FORMAT: 'json',
    LOG_LEVEL: 'info',
  };
}

/** mesh.yaml with the app port changed (the file says 8000). */
export function meshYaml(appPort: number): string {
  return readFileSync(meshFile, 'utf8').replace(/\b8000\b/g, String(appPort));
}
