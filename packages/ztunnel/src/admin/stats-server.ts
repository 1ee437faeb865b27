import { createServer, type Server } from 'node:http';
import type { Registry } from 'prom-client';

/** `/metrics` and `/stats/prometheus` in the Prometheus text format of the registry. */
export function createStatsServer(registry: Registry, beforeScrape: () => void = () => {}): Server {
  return createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' || (path !== '/metrics' && path !== '/stats/prometheus')) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    beforeScrape();
    registry
      .metrics()
      .then((body) => res.writeHead(200, { 'content-type': registry.contentType }).end(body))
      .catch((err: Error) =>
        res.writeHead(500, { 'content-type': 'text/plain' }).end(`${err.message}\n`),
      );
  });
}
