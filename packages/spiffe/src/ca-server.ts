import {
  type Metadata,
  Server,
  ServerCredentials,
  type ServerOptions,
  type ServerUnaryCall,
  type sendUnaryData,
  status,
} from '@grpc/grpc-js';
import {
  type IstioCertificateRequest,
  type IstioCertificateResponse,
  istioCertificateService,
  structString,
} from './ca-proto.js';
import { channels } from './diagnostics.js';
import { SpiffeError } from './errors.js';
import type { LocalCa } from './local-ca.js';
import { SpiffeId } from './spiffe-id.js';

/** What an authenticated caller may ask for. */
export interface CaCaller {
  /** A name for logs and diagnostics (e.g. `istio-system/ztunnel`). */
  name?: string;
  /**
   * The caller's own identity. When set, requests without impersonation must be for exactly
   * this identity; when absent, the CSR's SPIFFE ID (in the CA's trust domain) is signed.
   */
  identity?: SpiffeId;
  /** May request certificates for other identities via `metadata.ImpersonatedIdentity` (a node agent such as ztunnel). */
  mayImpersonate?: boolean;
}

export interface AuthenticateRequest {
  /** The bearer token, or `undefined` when the request carried none. */
  token: string | undefined;
  /** Request headers (first value of each). */
  headers: Readonly<Record<string, string>>;
  /** The peer address as grpc-js reports it. */
  peer: string;
}

export interface IstioCaServerOptions {
  /** The CA that signs. */
  ca: LocalCa;
  /** Bearer tokens and what each may do. */
  tokens?: Readonly<Record<string, CaCaller>>;
  /** Custom authentication (e.g. Kubernetes TokenReview); consulted when `tokens` has no match. */
  authenticate?: (
    request: AuthenticateRequest,
  ) => CaCaller | undefined | Promise<CaCaller | undefined>;
  /** Serving key and `leaf + intermediates` PEM. Default: issued by `ca` for `dnsNames` and `ipAddresses`. */
  servingCertificate?: { privateKey: string; certChain: string };
  /** Default `['localhost', 'istiod.istio-system.svc']`. */
  dnsNames?: readonly string[];
  /** Default `['127.0.0.1', '::1']`. */
  ipAddresses?: readonly string[];
  /** Passed to the grpc-js server. */
  serverOptions?: ServerOptions;
}

/**
 * Serves `istio.v1.auth.IstioCertificateService/CreateCertificate` over TLS, backed by a
 * {@link LocalCa}: a real CA endpoint for a local mesh and for tests. Callers authenticate
 * with a bearer token; impersonation (`metadata.ImpersonatedIdentity`) is refused unless the
 * caller is allowed it.
 */
export class IstioCaServer {
  readonly ca: LocalCa;
  readonly #options: IstioCaServerOptions;
  readonly #server: Server;
  #port: number | undefined;
  #host = '127.0.0.1';
  #closing: Promise<void> | undefined;

  constructor(options: IstioCaServerOptions) {
    if (!options?.ca) throw new SpiffeError('ERR_SPIFFE_INVALID_ARGUMENT', 'ca is required');
    this.ca = options.ca;
    this.#options = options;
    this.#server = new Server(options.serverOptions);
    this.#server.addService(istioCertificateService(), {
      CreateCertificate: (
        call: ServerUnaryCall<IstioCertificateRequest, IstioCertificateResponse>,
        callback: sendUnaryData<IstioCertificateResponse>,
      ) => {
        this.#handle(call).then(
          (certChain) => callback(null, { certChain }),
          (err: { code: status; details: string }) => callback(err),
        );
      },
    });
  }

  /** Starts listening on TLS; resolves with the bound port. Default `127.0.0.1:0` (any free port). */
  async listen(
    options: { host?: string; port?: number; signal?: AbortSignal } = {},
  ): Promise<number> {
    options.signal?.throwIfAborted();
    if (this.#port !== undefined || this.#closing) {
      throw new SpiffeError(
        'ERR_SPIFFE_INVALID_ARGUMENT',
        'IstioCaServer is already listening or closed',
      );
    }
    const host = options.host ?? '127.0.0.1';
    const serving =
      this.#options.servingCertificate ??
      this.ca.issueServingCertificate({
        dnsNames: this.#options.dnsNames ?? ['localhost', 'istiod.istio-system.svc'],
        ipAddresses: this.#options.ipAddresses ?? ['127.0.0.1', '::1'],
        ttlSeconds: Math.min(this.ca.maxTtlSeconds, 365 * 86_400),
      });
    const creds = ServerCredentials.createSsl(
      null,
      [
        {
          private_key: Buffer.from(serving.privateKey),
          cert_chain: Buffer.from(serving.certChain),
        },
      ],
      false,
    );
    const target = host.includes(':')
      ? `[${host}]:${options.port ?? 0}`
      : `${host}:${options.port ?? 0}`;
    this.#port = await new Promise<number>((resolve, reject) => {
      this.#server.bindAsync(target, creds, (err, port) => {
        if (err) {
          reject(
            new SpiffeError(
              'ERR_SPIFFE_INVALID_ARGUMENT',
              `cannot listen on ${target}: ${err.message}`,
              {
                cause: err,
              },
            ),
          );
        } else resolve(port);
      });
    });
    this.#host = host;
    return this.#port;
  }

  get port(): number {
    if (this.#port === undefined)
      throw new SpiffeError('ERR_SPIFFE_INVALID_ARGUMENT', 'not listening');
    return this.#port;
  }

  /** `host:port` to give to {@link IstioCaClient}. */
  get address(): string {
    return this.#host.includes(':') ? `[${this.#host}]:${this.port}` : `${this.#host}:${this.port}`;
  }

  /** PEM of the roots that verify the serving certificate (the CA's roots by default). */
  get rootCert(): string {
    return this.ca.trustBundle.toPem();
  }

  /** Stops accepting calls and waits for calls in progress. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= new Promise<void>((resolve) => {
      this.#server.tryShutdown(() => resolve());
    });
    return this.#closing;
  }

  /** Cancels every call in progress and closes at once. */
  destroy(): void {
    this.#server.forceShutdown();
    this.#closing ??= Promise.resolve();
  }

  async #handle(
    call: ServerUnaryCall<IstioCertificateRequest, IstioCertificateResponse>,
  ): Promise<string[]> {
    const headers = firstValues(call.metadata);
    const peer = call.getPeer();
    const fail = (code: status, details: string, error?: unknown) => {
      if (channels.caServe.hasSubscribers)
        channels.caServe.publish({ peer, error: error ?? details });
      return { code, details };
    };
    const auth = headers.authorization;
    const token = auth && /^bearer\s+/i.test(auth) ? auth.replace(/^bearer\s+/i, '') : undefined;
    let caller: CaCaller | undefined;
    try {
      caller = token !== undefined ? this.#options.tokens?.[token] : undefined;
      if (!caller && this.#options.authenticate) {
        caller = await this.#options.authenticate({ token, headers, peer });
      }
    } catch (err) {
      throw fail(status.UNAUTHENTICATED, 'authenticate request failure', err);
    }
    if (!caller) throw fail(status.UNAUTHENTICATED, 'authenticate request failure');

    const { csr, validityDuration, metadata } = call.request;
    let identity = caller.identity;
    const impersonated = structString(metadata, 'ImpersonatedIdentity');
    if (impersonated !== undefined && impersonated !== '') {
      if (!caller.mayImpersonate) {
        throw fail(status.PERMISSION_DENIED, 'request impersonation authentication failure');
      }
      identity = SpiffeId.tryParse(impersonated);
      if (!identity) {
        throw fail(
          status.INVALID_ARGUMENT,
          `ImpersonatedIdentity ${JSON.stringify(impersonated)} is not a SPIFFE ID`,
        );
      }
    }
    try {
      const chain = this.ca.signCsr(csr, {
        ttlSeconds: validityDuration > 0 ? validityDuration : undefined,
        identity,
      });
      if (channels.caServe.hasSubscribers) {
        channels.caServe.publish({ peer, caller: caller.name, identity: identity?.toString() });
      }
      return chain;
    } catch (err) {
      if (err instanceof SpiffeError) {
        const code =
          err.code === 'ERR_SPIFFE_CSR_IDENTITY_REJECTED' && identity
            ? status.PERMISSION_DENIED
            : err.code.startsWith('ERR_SPIFFE_CSR') ||
                err.code === 'ERR_SPIFFE_PEM_INVALID' ||
                err.code === 'ERR_SPIFFE_TTL_INVALID' ||
                err.code === 'ERR_SPIFFE_CSR_IDENTITY_REJECTED'
              ? status.INVALID_ARGUMENT
              : status.INTERNAL;
        throw fail(code, `${err.code}: ${err.message}`, err);
      }
      throw fail(status.INTERNAL, 'internal error', err);
    }
  }
}

function firstValues(md: Metadata): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(md.getMap())) {
    if (typeof v === 'string') out[k] = v;
  }
  return out;
}
