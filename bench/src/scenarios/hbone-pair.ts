/**
 * HBONE alone: a client-side proxy process (TCP in, pooled HBONE out) and a server process
 * (HBONE in, TCP out), beside direct TCP and a stunnel4 TLS 1.3 mTLS pair with the same
 * certificates: throughput on 1 and 8 tunnels, 1 KiB ping-pong latency, new tunnels per
 * second on the pooled connection, CPU, peak RSS, RSS per idle tunnel.
 */

import { compareHbone } from '../hbone/compare.js';
import type { Scenario } from '../scenario.js';

const scenario: Scenario = {
  name: 'hbone/pair',
  description:
    'HBONE client + server processes vs direct TCP and a stunnel4 pair: throughput, latency, tunnels/s (pooled), CPU, RSS, idle tunnels',
  kind: 'e2e',
  budgetMs: 240_000,
  requires: { commands: ['stunnel4', 'openssl'] },
  run: (ctx) =>
    compareHbone(ctx, {
      notes: [
        'hbone: one client proxy process (TCP listener -> pooled HboneClient) and one HboneServer process; each application connection is a new CONNECT stream on the pooled mTLS connection (≤100 per connection), while stunnel4 handshakes every connection.',
      ],
    }),
};

export default scenario;
