import { createServer, type Server } from 'node:http';
import type { Readiness } from '../readiness.js';

/** `GET /healthz/ready`: 200 `ready`, or 500 `not ready, pending: …` (ztunnel's bodies). */
export function createReadinessServer(readiness: Readiness): Server {
  return createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path !== '/healthz/ready') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    if (readiness.ready) {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ready\n');
    } else {
      res
        .writeHead(500, { 'content-type': 'text/plain' })
        .end(`not ready, pending: ${readiness.pending.join(', ')}\n`);
    }
  });
}
