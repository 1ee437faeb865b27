/**
 * HBONE alone: a client-side proxy process (TCP in, pooled HBONE out) and a server process
 * (HBONE in, TCP out), beside direct TCP and a stunnel4 TLS 1.3 mTLS pair with the same
 * certificates: throughput on 1 and 8 tunnels, 1 KiB ping-pong latency, new tunnels per
 * second on the pooled connection, CPU, peak RSS, RSS per idle tunnel.
 */

import { hbonePath } from '../hbone/path.js';
import { Agent } from '../lib/agent.js';
import { createTestPki } from '../lib/certs.js';
import { stunnelPath } from '../lib/stunnel.js';
import { comparePaths, directPath } from '../lib/suite.js';
import type { Scenario } from '../scenario.js';

const scenario: Scenario = {
  name: 'hbone/pair',
  description:
    'HBONE client + server processes vs direct TCP and a stunnel4 pair: throughput, latency, tunnels/s (pooled), CPU, RSS, idle tunnels',
  kind: 'e2e',
  budgetMs: 240_000,
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
          hbonePath({ pki, ...(ctx.profile ? { profile: { dir: ctx.profileDir } } : {}) }),
        ],
        serverAgent,
        clientAgent,
      });
      return {
        measurements,
        notes: [
          ...notes,
          'hbone: one client proxy process (TCP listener -> pooled HboneClient) and one HboneServer process; each application connection is a new CONNECT stream on the pooled mTLS connection (≤100 per connection), while stunnel4 handshakes every connection.',
          'Same P-256 SPIFFE certificates (openssl-made root) for stunnel4 and hbone; TLS 1.3, AES-256-GCM on both.',
        ],
      };
    } finally {
      await clientAgent.close();
      await serverAgent.close();
    }
  },
};

export default scenario;
