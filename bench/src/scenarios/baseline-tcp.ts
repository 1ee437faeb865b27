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
      // Every tunnel scenario measures these baselines again beside itself, so a full run keeps
      // this one short: it proves the harness and gives a first reference.
      const sizes = ctx.quick
        ? undefined
        : {
            repeats: 1,
            bulkMs: 1500,
            fixedMs: 2000,
            saturateMs: 1000,
            connRateMs: 1000,
            idleTunnels: 200,
          };
      const { measurements, notes } = await comparePaths(ctx, {
        paths,
        serverAgent,
        clientAgent,
        sizes,
      });
      measurements.push(...(await iperf3Figures(ctx, paths, { seconds: ctx.quick ? 1 : 2 })));
      return {
        measurements,
        notes: [
          ...notes,
          ...(ctx.quick
            ? []
            : [
                'Short sizes in full runs (one run per figure, 2 s iperf3, 200 idle connections): every tunnel scenario measures these baselines again beside itself at full size.',
              ]),
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
