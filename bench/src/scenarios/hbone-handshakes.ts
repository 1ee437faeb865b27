/**
 * New tunnels per second when every tunnel needs its own mTLS connection (the pool's cold
 * path, and what double HBONE's inner connections cost), beside direct TCP and stunnel4,
 * which also handshakes every connection.
 */

import { compareHbone } from '../hbone/compare.js';
import type { Scenario } from '../scenario.js';

const scenario: Scenario = {
  name: 'hbone/fresh-connections',
  description:
    'HBONE tunnels/s with a fresh mTLS connection per tunnel vs direct TCP and stunnel4 (also one handshake per connection)',
  kind: 'e2e',
  budgetMs: 120_000,
  requires: { commands: ['stunnel4', 'openssl'] },
  run: (ctx) =>
    compareHbone(ctx, {
      fresh: true,
      name: 'hbone fresh conn',
      figures: ['connRate'],
      notes: [
        'hbone fresh conn: the client proxy opens a new TLS 1.3 + HTTP/2 connection (cached SecureContext, no resumption) for every tunnel and closes it afterwards.',
      ],
    }),
};

export default scenario;
