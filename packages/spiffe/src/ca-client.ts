import { readFile } from 'node:fs/promises';
import {
  type ChannelOptions,
  type Client,
  credentials,
  Metadata,
  makeGenericClientConstructor,
  type ServiceClientConstructor,
  type ServiceError,
  status,
} from '@grpc/grpc-js';
import {
  type IstioCertificateRequest,
  type IstioCertificateResponse,
  istioCertificateService,
  toStruct,
} from './ca-proto.js';
import type { WorkloadCertificate } from './certificate.js';
import { createCsr } from './csr.js';
import { channels } from './diagnostics.js';
import { SpiffeError, type SpiffeErrorCode } from './errors.js';
import type { CertificateIssuer, IssueOptions } from './issuer.js';
import type { SpiffeId } from './spiffe-id.js';
import { workloadCertificateFromCertChain } from './workload-certificate.js';

export interface IstioCaClientOptions {
  /**
   * CA address: `host:port` or `https://host:port` (ztunnel's `CA_ADDRESS`). Always TLS.
   */
  address: string;
  /**
   * How the CA's serving certificate is verified (ztunnel's `CA_ROOT_CA`): a file path, the
   * literal `SYSTEM` (Node's bundled roots), or inline PEM. Default
   * `./var/run/secrets/istio/root-cert.pem`.
   */
  rootCert?: string;
  /** Server name to verify instead of the address host (ztunnel's `ALT_CA_HOSTNAME`). */
  altHostname?: string;
  /** A bearer token sent as `authorization: Bearer <token>`. */
  token?: string;
  /** A file holding the bearer token, re-read on every request (projected tokens rotate). */
  tokenFile?: string;
  /** Sent as the `clusterid` header. Default `Kubernetes`. */
  clusterId?: string;
  /** Extra request headers (ztunnel's `CA_HEADER_*`). */
  headers?: Readonly<Record<string, string>>;
  /** Requested lifetime when a call names none (ztunnel's `SECRET_TTL`). Default 86 400 s. */
  ttlSeconds?: number;
  /**
   * Send `metadata.ImpersonatedIdentity` (ztunnel's shared/node mode, requesting certificates
   * for the workloads on its node). Default true.
   */
  impersonate?: boolean;
  /** Per-request deadline. Default 10 000 ms. */
  timeoutMs?: number;
  /** Passed to the gRPC channel. */
  channelOptions?: ChannelOptions;
}

export interface CreateCertificateOptions {
  ttlSeconds?: number;
  /** Sent as `metadata.ImpersonatedIdentity`. */
  impersonatedIdentity?: SpiffeId | string;
  signal?: AbortSignal;
}

const DEFAULT_ROOT = './var/run/secrets/istio/root-cert.pem';

type Call = (
  request: IstioCertificateRequest,
  metadata: Metadata,
  options: { deadline: Date },
  callback: (err: ServiceError | null, response?: IstioCertificateResponse) => void,
) => { cancel(): void };

/**
 * A client of `istio.v1.auth.IstioCertificateService/CreateCertificate` (istiod, or
 * {@link IstioCaServer}), sending what ztunnel sends.
 */
export class IstioCaClient implements CertificateIssuer {
  readonly address: string;
  readonly #options: IstioCaClientOptions;
  #client: Client | undefined;
  #connecting: Promise<Client> | undefined;
  #closed = false;

  constructor(options: IstioCaClientOptions) {
    if (!options || typeof options.address !== 'string' || options.address === '') {
      throw new SpiffeError('ERR_SPIFFE_INVALID_ARGUMENT', 'address is required');
    }
    this.address = options.address.replace(/^https:\/\//, '').replace(/\/+$/, '');
    if (/^[a-z]+:\/\//i.test(this.address)) {
      throw new SpiffeError(
        'ERR_SPIFFE_INVALID_ARGUMENT',
        `address ${options.address} must be host:port or https://host:port`,
      );
    }
    this.#options = options;
  }

  /**
   * A fresh P-256 key and CSR for `identity`, sent to the CA; the response is split into a
   * {@link WorkloadCertificate} whose leaf must carry `identity`.
   */
  async issue(identity: SpiffeId, options: IssueOptions = {}): Promise<WorkloadCertificate> {
    options.signal?.throwIfAborted();
    const started = performance.now();
    const { csr, privateKey } = createCsr(identity);
    try {
      const chain = await this.createCertificate(csr, {
        ttlSeconds: options.ttlSeconds,
        impersonatedIdentity: this.#options.impersonate === false ? undefined : identity,
        signal: options.signal,
      });
      let cert: WorkloadCertificate;
      try {
        cert = workloadCertificateFromCertChain(privateKey, chain, identity);
      } catch (err) {
        if (err instanceof SpiffeError && err.code === 'ERR_SPIFFE_CA_IDENTITY_MISMATCH') throw err;
        throw new SpiffeError(
          'ERR_SPIFFE_CA_RESPONSE_INVALID',
          `CA ${this.address} returned an unusable certificate chain: ${(err as Error).message}`,
          { cause: err },
        );
      }
      if (channels.caRequest.hasSubscribers) {
        channels.caRequest.publish({
          identity: identity.toString(),
          address: this.address,
          durationMs: performance.now() - started,
        });
      }
      return cert;
    } catch (error) {
      if (channels.caError.hasSubscribers) {
        channels.caError.publish({ identity: identity.toString(), address: this.address, error });
      }
      throw error;
    }
  }

  /** One raw `CreateCertificate` call: the PEM CSR in, `cert_chain` out. */
  async createCertificate(csr: string, options: CreateCertificateOptions = {}): Promise<string[]> {
    const { signal } = options;
    signal?.throwIfAborted();
    if (this.#closed) throw new SpiffeError('ERR_SPIFFE_CLOSED', 'IstioCaClient is closed');
    const ttl = options.ttlSeconds ?? this.#options.ttlSeconds ?? 86_400;
    if (!Number.isFinite(ttl) || ttl <= 0) {
      throw new SpiffeError('ERR_SPIFFE_TTL_INVALID', `ttlSeconds ${ttl} must be positive`);
    }
    const metadata = await this.#metadata();
    const client = await this.#connect();
    signal?.throwIfAborted();
    const request: IstioCertificateRequest = {
      csr,
      validityDuration: Math.ceil(ttl),
      metadata: options.impersonatedIdentity
        ? toStruct({ ImpersonatedIdentity: options.impersonatedIdentity.toString() })
        : null,
    };
    const timeoutMs = this.#options.timeoutMs ?? 10_000;
    const call = (client as unknown as { CreateCertificate: Call }).CreateCertificate.bind(client);
    const response = await new Promise<IstioCertificateResponse>((resolve, reject) => {
      const onAbort = () => {
        reject(signal!.reason);
        handle.cancel();
      };
      const handle = call(
        request,
        metadata,
        { deadline: new Date(Date.now() + timeoutMs) },
        (err, res) => {
          signal?.removeEventListener('abort', onAbort);
          if (signal?.aborted) return reject(signal.reason);
          if (err) return reject(this.#mapError(err, timeoutMs));
          resolve(res!);
        },
      );
      signal?.addEventListener('abort', onAbort, { once: true });
    });
    if (!Array.isArray(response.certChain) || response.certChain.length === 0) {
      throw new SpiffeError(
        'ERR_SPIFFE_CA_RESPONSE_INVALID',
        `CA ${this.address} returned an empty cert_chain`,
      );
    }
    return response.certChain;
  }

  /** Closes the channel; later calls fail with `ERR_SPIFFE_CLOSED`. */
  close(): void {
    this.#closed = true;
    this.#client?.close();
    this.#client = undefined;
  }

  async #metadata(): Promise<Metadata> {
    const md = new Metadata();
    let token = this.#options.token;
    if (this.#options.tokenFile) {
      try {
        token = (await readFile(this.#options.tokenFile, 'utf8')).trim();
      } catch (cause) {
        throw new SpiffeError(
          'ERR_SPIFFE_TOKEN_UNREADABLE',
          `cannot read token file ${this.#options.tokenFile}`,
          { cause },
        );
      }
    }
    if (token) md.set('authorization', `Bearer ${token}`);
    md.set('clusterid', this.#options.clusterId ?? 'Kubernetes');
    for (const [k, v] of Object.entries(this.#options.headers ?? {})) md.set(k.toLowerCase(), v);
    return md;
  }

  #connect(): Promise<Client> {
    if (this.#client) return Promise.resolve(this.#client);
    this.#connecting ??= (async () => {
      const root = this.#options.rootCert ?? DEFAULT_ROOT;
      let rootPem: Buffer | null = null;
      if (root === 'SYSTEM') {
        rootPem = null;
      } else if (root.includes('-----BEGIN')) {
        rootPem = Buffer.from(root);
      } else {
        try {
          rootPem = await readFile(root);
        } catch (cause) {
          this.#connecting = undefined;
          throw new SpiffeError('ERR_SPIFFE_CA_UNAVAILABLE', `cannot read CA root file ${root}`, {
            cause,
          });
        }
      }
      const channelOptions: ChannelOptions = { ...this.#options.channelOptions };
      if (this.#options.altHostname) {
        channelOptions['grpc.ssl_target_name_override'] = this.#options.altHostname;
        channelOptions['grpc.default_authority'] = this.#options.altHostname;
      }
      const Ctor = makeClientConstructor();
      if (this.#closed) throw new SpiffeError('ERR_SPIFFE_CLOSED', 'IstioCaClient is closed');
      this.#client = new Ctor(this.address, credentials.createSsl(rootPem), channelOptions);
      return this.#client;
    })();
    return this.#connecting;
  }

  #mapError(err: ServiceError, timeoutMs: number): SpiffeError {
    const codes: Partial<Record<status, SpiffeErrorCode>> = {
      [status.UNAVAILABLE]: 'ERR_SPIFFE_CA_UNAVAILABLE',
      [status.DEADLINE_EXCEEDED]: 'ERR_SPIFFE_CA_TIMEOUT',
      [status.UNAUTHENTICATED]: 'ERR_SPIFFE_CA_UNAUTHENTICATED',
      [status.PERMISSION_DENIED]: 'ERR_SPIFFE_CA_PERMISSION_DENIED',
    };
    const code = codes[err.code] ?? 'ERR_SPIFFE_CA_REJECTED';
    const detail =
      err.code === status.DEADLINE_EXCEEDED ? `no answer within ${timeoutMs} ms` : err.details;
    return new SpiffeError(code, `CA ${this.address}: ${status[err.code] ?? err.code}: ${detail}`, {
      cause: err,
    });
  }
}

let ClientCtor: ServiceClientConstructor | undefined;

function makeClientConstructor(): ServiceClientConstructor {
  ClientCtor ??= makeGenericClientConstructor(istioCertificateService(), 'IstioCertificateService');
  return ClientCtor;
}
