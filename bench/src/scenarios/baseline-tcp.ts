/**
 * The baselines on their own: direct TCP against a stunnel4 mTLS pair (TLS 1.3, P-256 SPIFFE
 * certificates), with the Node traffic agents and with iperf3. Proves the harness and gives
 * the reference every tunnel figure is read against.
 */

import { Agent } from '../lib/agent.js';
import { createClientServerPki } from '../lib/certs.js';
import { iperf3Figures } from '../lib/iperf3-figures.js';
import { stunnelPath } from '../lib/stunnel.js';
import { comparePaths, directPath } from '../lib/suite.js';
import type { Scenario } from '../scenario.js';

const scenario: Scenario = {
  name: 'baseline/tcp',
  description:
    'Direct TCP vs a stunnel4 mTLS pair: throughput (1, 8 conns), latency, conn/s, CPU, RSS',
  kind: 'e2e',
  requires: { commands: ['stunnel4', 'openssl', 'iperf3'] },
  async run(ctx) {
    const pki = await createClientServerPki(`${ctx.tmpDir}/pki`, ctx.signal);
    const paths = [
      directPath(),
      stunnelPath({ client: pki.files('client'), server: pki.files('server'), dir: ctx.tmpDir }),
    ];
    const serverAgent = await Agent.start({ name: 'server agent', signal: ctx.signal });
    const clientAgent = await Agent.start({ name: 'client agent', signal: ctx.signal });
    try {
      const { measurements, notes } = await comparePaths(ctx, { paths, serverAgent, clientAgent });
      measurements.push(...(await iperf3Figures(ctx, paths)));
      return {
        measurements,
        notes: [
          ...notes,
          'Node agents: a sink/echo process and a client process; every figure runs each path in turn.',
          'stunnel4: TLS 1.3 only, AES-256-GCM/AES-128-GCM, mutual auth, TCP_NODELAY, no session resumption.',
          'Latency: 1 KiB request/response; value = p50, percentiles in the distribution chart.',
        ],
      };
    } finally {
      await clientAgent.close();
      await serverAgent.close();
    }
  },
};

export default scenario;
