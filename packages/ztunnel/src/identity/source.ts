import type { CertificateSource } from '@mesh/spiffe';
import type { ZtunnelConfig } from '../config/settings.js';
import { ZtunnelError } from '../errors.js';
import type { Logger } from '../logging.js';

/**
 * The certificate source the configuration asks for: the Istio CA over gRPC when CA_ADDRESS is
 * set, otherwise the embedded CA in ZTUNNEL_CA_DIR.
 */
export async function createCertificateSource(
  config: ZtunnelConfig,
  _options: { logger: Logger; signal?: AbortSignal },
): Promise<CertificateSource> {
  // TODO(ztunnel): wire @mesh/spiffe LocalCa / IstioCaClient / SecretManager once they land.
  throw new ZtunnelError(
    'ERR_ZTUNNEL_CA_UNAVAILABLE',
    `no certificate source available yet (CA_ADDRESS=${config.caAddress ?? ''}, ZTUNNEL_CA_DIR=${config.caDir})`,
  );
}
