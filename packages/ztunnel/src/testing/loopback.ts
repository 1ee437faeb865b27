/**
 * Environment for one dedicated-mode ztunnel of a one-host mesh: every listener bound to the
 * workload's own loopback address (port 0 = any, except HBONE, which peers must find), the
 * embedded CA shared through `caDir`, SOCKS5 on.
 */
export function loopbackNodeEnv(options: {
  ip: string;
  /** `namespace/name/serviceaccount`. */
  workload: string;
  localXdsPath: string;
  caDir: string;
  hbonePort: number;
}): Record<string, string> {
  const { ip, hbonePort } = options;
  return {
    PROXY_MODE: 'dedicated',
    PROXY_WORKLOAD_INFO: options.workload,
    LOCAL_XDS_PATH: options.localXdsPath,
    ZTUNNEL_CA_DIR: options.caDir,
    UNSTABLE_ENABLE_SOCKS5: 'true',
    ZTUNNEL_HBONE_PORT: String(hbonePort),
    ZTUNNEL_INBOUND_ADDRESS: `${ip}:${hbonePort}`,
    ZTUNNEL_INBOUND_PLAINTEXT_ADDRESS: `${ip}:0`,
    ZTUNNEL_OUTBOUND_ADDRESS: `${ip}:0`,
    ZTUNNEL_SOCKS5_ADDRESS: `${ip}:0`,
    ZTUNNEL_ADMIN_ADDRESS: `${ip}:0`,
    ZTUNNEL_STATS_ADDRESS: `${ip}:0`,
    ZTUNNEL_READINESS_ADDRESS: `${ip}:0`,
  };
}

/** Polls the proxy's readiness until it is ready or `timeoutMs` passes; resolves with the outcome. */
export async function waitUntilReady(
  zt: { readiness: { ready: boolean } },
  timeoutMs = 10_000,
): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!zt.readiness.ready && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
  return zt.readiness.ready;
}
