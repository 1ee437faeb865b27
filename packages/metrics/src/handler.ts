import type { IncomingMessage, ServerResponse } from 'node:http';
import { promisify } from 'node:util';
import { gzip as gzipCb } from 'node:zlib';
import type { Registry } from 'prom-client';
import { MetricsError } from './errors.js';
import { contentTypeOf, negotiateFormat, renderRegistry } from './exposition.js';

const gzip = promisify(gzipCb);

/** ztunnel's stats server paths. */
export const METRICS_PATHS = ['/metrics', '/stats/prometheus'] as const;

export interface MetricsHandlerOptions {
  /** Paths answered; default `/metrics` and `/stats/prometheus`. */
  paths?: readonly string[];
  /** gzip the body when `Accept-Encoding` allows it (ztunnel compresses too). Default true. */
  compress?: boolean;
}

/**
 * A node:http request handler. Requests for other paths go to `next` when given (so it
 * mounts in front of another handler), else get 404.
 */
export type MetricsRequestHandler = (
  req: IncomingMessage,
  res: ServerResponse,
  next?: () => void,
) => void;

/**
 * Serves `registry` the way ztunnel's stats server (15020) does: OpenMetrics when the scraper
 * asks for it, else the Prometheus text format. Collect failures answer 500 with the error
 * code; they never throw out of the handler.
 */
export function createMetricsHandler(
  registry: Registry,
  options: MetricsHandlerOptions = {},
): MetricsRequestHandler {
  if (
    registry === undefined ||
    registry === null ||
    typeof registry.getMetricsAsJSON !== 'function'
  ) {
    throw new MetricsError(
      'ERR_METRICS_REGISTRY_REQUIRED',
      'createMetricsHandler needs the prom-client Registry to serve',
    );
  }
  const paths = new Set(options.paths ?? METRICS_PATHS);
  const compress = options.compress ?? true;
  return (req, res, next) => {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    if (!paths.has(path)) {
      if (next) return next();
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' });
      res.end('method not allowed\n');
      return;
    }
    void serve(registry, req, res, compress);
  };
}

async function serve(
  registry: Registry,
  req: IncomingMessage,
  res: ServerResponse,
  compress: boolean,
): Promise<void> {
  const format = negotiateFormat(req.headers.accept);
  let body: Buffer;
  try {
    body = Buffer.from(await renderRegistry(registry, format));
  } catch (err) {
    const error = new MetricsError(
      'ERR_METRICS_COLLECT_FAILED',
      `collecting metrics failed: ${err instanceof Error ? err.message : String(err)}`,
      { cause: err },
    );
    if (!res.headersSent && !res.destroyed) {
      res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' });
      res.end(`${error.code}: ${error.message}\n`);
    }
    return;
  }
  const headers: Record<string, string | number> = {
    'content-type': contentTypeOf(format),
    vary: 'Accept, Accept-Encoding',
  };
  if (compress && acceptsGzip(req.headers['accept-encoding'])) {
    body = await gzip(body);
    headers['content-encoding'] = 'gzip';
  }
  headers['content-length'] = body.length;
  if (res.destroyed) return;
  res.writeHead(200, headers);
  res.end(req.method === 'HEAD' ? undefined : body);
}

function acceptsGzip(header: string | undefined): boolean {
  if (!header) return false;
  for (const part of header.split(',')) {
    const [coding = '', ...params] = part.split(';');
    const c = coding.trim().toLowerCase();
    if (c !== 'gzip' && c !== '*') continue;
    const q = params.map((p) => p.trim().toLowerCase()).find((p) => p.startsWith('q='));
    if (q !== undefined && Number(q.slice(2)) === 0) continue;
    return true;
  }
  return false;
}
