/**
 * New tunnels per second when every tunnel needs its own mTLS connection (the pool's cold
 * path, and what double HBONE's inner connections cost), beside direct TCP and stunnel4,
 * which also handshakes every connection.
 */

import { hbonePath } from '../hbone/path.js';
import { Agent } from '../lib/agent.js';
import { createTestPki } from '../lib/certs.js';
import { stunnelPath } from '../lib/stunnel.js';
import { comparePaths, directPath } from '../lib/suite.js';
import type { Scenario } from '../scenario.js';

const scenario: Scenario = {
  name: 'hbone/fresh-connections',
  description:
    'HBONE tunnels/s with a fresh mTLS connection per tunnel vs direct TCP and stunnel4 (also one handshake per connection)',
  kind: 'e2e',
  budgetMs: 120_000,
  requires: { commands: ['stunnel4', 'openssl'] },
  async run(ctx) {
    const pki = await createTestPki({
      dir: `${ctx.tmpDir}/pki`,
      identities: {
        client: 'spiffe://cluster.local/ns/bench/sa/client',
        server: 'spiffe://cluster.local/ns/bench/sa/server',
      },
      signal: ctx.signal,
    });
    const tls = (name: 'client' | 'server') => ({
      certPath: pki.leaves[name]!.certPath,
      keyPath: pki.leaves[name]!.keyPath,
      caPath: pki.caPath,
    });
    const serverAgent = await Agent.start({ name: 'server agent', signal: ctx.signal });
    const clientAgent = await Agent.start({ name: 'client agent', signal: ctx.signal });
    try {
      const { measurements, notes } = await comparePaths(ctx, {
        paths: [
          directPath(),
          stunnelPath({ client: tls('client'), server: tls('server'), dir: ctx.tmpDir }),
          hbonePath({ pki, fresh: true, name: 'hbone fresh conn' }),
        ],
        serverAgent,
        clientAgent,
        figures: ['connRate'],
      });
      return {
        measurements,
        notes: [
          ...notes,
          'hbone fresh conn: the client proxy opens a new TLS 1.3 + HTTP/2 connection (cached SecureContext, no resumption) for every tunnel and closes it afterwards.',
        ],
      };
    } finally {
      await clientAgent.close();
      await serverAgent.close();
    }
  },
};

export default scenario;
