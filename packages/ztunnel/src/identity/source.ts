import { type CertificateSource, LocalCa } from '@mesh/spiffe';
import type { ZtunnelConfig } from '../config/settings.js';
import { ZtunnelError } from '../errors.js';
import type { Logger } from '../logging.js';
import { RotatingCertificateSource } from './rotating-source.js';

/**
 * The certificate source the configuration asks for: the Istio CA over gRPC when CA_ADDRESS is
 * set, otherwise the embedded CA in ZTUNNEL_CA_DIR (Istio's plug-in CA layout, created on first
 * run, so every ztunnel sharing the directory trusts the others).
 */
export async function createCertificateSource(
  config: ZtunnelConfig,
  options: { logger: Logger; signal?: AbortSignal },
): Promise<CertificateSource> {
  const ttlSeconds = Math.max(1, Math.round(config.secretTtl / 1000));
  const onError = (identity: unknown, err: unknown) =>
    options.logger.warn(
      { err, identity: String(identity) },
      'certificate renewal failed; the current one is kept',
    );
  if (config.caAddress !== undefined) {
    throw new ZtunnelError(
      'ERR_ZTUNNEL_CA_UNAVAILABLE',
      `CA_ADDRESS=${config.caAddress}: the Istio CA client is not available in this build; unset CA_ADDRESS to use the embedded CA`,
    );
  }
  let ca: LocalCa;
  try {
    ca = await LocalCa.open(config.caDir, {
      trustDomain: config.trustDomain,
      signal: options.signal,
    });
  } catch (err) {
    throw new ZtunnelError(
      'ERR_ZTUNNEL_CA_UNAVAILABLE',
      `the embedded CA in ${config.caDir} cannot be opened: ${(err as Error).message}`,
      { cause: err },
    );
  }
  options.logger.info({ dir: config.caDir, trustDomain: ca.trustDomain }, 'embedded CA ready');
  return new RotatingCertificateSource(ca, { ttlSeconds, onError });
}
