import { type CertificateIssuer, IstioCaClient, LocalCa, SecretManager } from '@mesh/spiffe';
import type { ZtunnelConfig } from '../config/settings.js';
import { ZtunnelError } from '../errors.js';
import type { Logger } from '../logging.js';
import { tokenOption } from '../state/xds-source.js';

/**
 * The certificate source the configuration asks for, as a `SecretManager` (refresh at half
 * life, backoff, keep the valid certificate on failure): over the Istio CA (gRPC) when
 * CA_ADDRESS is set, otherwise over the embedded CA in ZTUNNEL_CA_DIR (Istio's plug-in CA
 * layout, created on first run, so every ztunnel sharing the directory trusts the others).
 */
export async function createCertificateSource(
  config: ZtunnelConfig,
  options: { logger: Logger; signal?: AbortSignal },
): Promise<SecretManager> {
  const ttlSeconds = Math.max(1, Math.round(config.secretTtl / 1000));
  let issuer: CertificateIssuer;
  if (config.caAddress !== undefined) {
    const token = tokenOption(config.authToken);
    issuer = new IstioCaClient({
      address: config.caAddress,
      rootCert: config.caRootCa,
      clusterId: config.clusterId,
      ttlSeconds,
      // Dedicated mode asks for its own workload's identity; only node proxies impersonate.
      impersonate: config.proxyMode === 'shared',
      ...(token && 'file' in token ? { tokenFile: token.file } : {}),
      ...(token && 'value' in token ? { token: token.value } : {}),
    });
    options.logger.info({ address: config.caAddress }, 'using the Istio CA');
  } else {
    try {
      issuer = await LocalCa.open(config.caDir, {
        trustDomain: config.trustDomain,
        ...(options.signal ? { signal: options.signal } : {}),
      });
    } catch (err) {
      throw new ZtunnelError(
        'ERR_ZTUNNEL_CA_UNAVAILABLE',
        `the embedded CA in ${config.caDir} cannot be opened: ${(err as Error).message}`,
        { cause: err },
      );
    }
    options.logger.info(
      { dir: config.caDir, trustDomain: config.trustDomain },
      'using the embedded CA',
    );
  }
  const manager = new SecretManager({ issuer, ttlSeconds });
  manager.on('error', (e) =>
    options.logger.warn(
      { identity: e.identity.toString(), err: e.error, retryInMs: e.retryInMs, serving: e.serving },
      'certificate fetch failed',
    ),
  );
  manager.on('rotated', (e) =>
    options.logger.info(
      {
        identity: e.identity.toString(),
        serial: e.certificate.serialNumber,
        notAfter: e.certificate.notAfter,
      },
      'certificate rotated',
    ),
  );
  const close = manager.close.bind(manager);
  manager.close = async () => {
    await close();
    if (issuer instanceof IstioCaClient) issuer.close();
  };
  return manager;
}
