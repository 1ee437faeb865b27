/**
 * End to end through two ztunnels (client node and server node), beside the same workload over
 * direct TCP and through a stunnel4 mTLS pair with certificates from the same root: throughput
 * (1 and 8 connections), latency at 1000 rps and saturated, new connections per second, CPU per
 * GB and per 1,000 requests, peak RSS of each proxy, and RSS per idle tunnel.
 */

import { Agent } from '../lib/agent.js';
import { createClientServerPki } from '../lib/certs.js';
import { iperf3Figures } from '../lib/iperf3-figures.js';
import { stunnelPath } from '../lib/stunnel.js';
import { comparePaths, directPath } from '../lib/suite.js';
import { targetNotes } from '../lib/targets.js';
import {
  findZtunnelEntry,
  inboundMutualTlsConnections,
  loopbackNodes,
  startZtunnelPair,
  ztunnelPath,
} from '../lib/ztunnel.js';
import type { Scenario } from '../scenario.js';

const scenario: Scenario = {
  name: 'ztunnel/e2e',
  description:
    'Two ztunnels (client + server node) vs direct TCP and a stunnel4 pair: throughput, latency, conn/s, CPU, RSS, idle tunnels',
  kind: 'e2e',
  budgetMs: 240_000,
  requires: {
    commands: ['stunnel4', 'openssl', 'iperf3'],
    check: () =>
      findZtunnelEntry()
        ? undefined
        : 'packages/ztunnel has no runnable entry point yet (expected the bin source or src/main.ts)',
  },
  async run(ctx) {
    const entry = findZtunnelEntry()!;
    const { clientIp, serverIp } = loopbackNodes();
    const caDir = `${ctx.tmpDir}/ca`;
    const pki = await createClientServerPki(caDir, ctx.signal);
    const pair = await startZtunnelPair({
      entry,
      dir: ctx.tmpDir,
      caDir,
      clientIp,
      serverIp,
      profile: ctx.profile ? { dir: ctx.profileDir } : undefined,
      signal: ctx.signal,
    });
    const serverAgent = await Agent.start({ name: 'server agent', signal: ctx.signal });
    const clientAgent = await Agent.start({ name: 'client agent', signal: ctx.signal });
    try {
      const paths = [
        directPath(clientIp),
        stunnelPath({ client: pki.files('client'), server: pki.files('server'), dir: ctx.tmpDir }),
        ztunnelPath(pair),
      ];
      const { measurements, notes } = await comparePaths(ctx, {
        paths,
        serverAgent,
        clientAgent,
        serverHost: serverIp,
      });
      measurements.push(...(await iperf3Figures(ctx, paths, { host: serverIp })));
      const mtls = await inboundMutualTlsConnections(pair, ctx.signal);
      if (mtls === 0) {
        throw new Error(
          'the server ztunnel counted no mutual-TLS connections: traffic did not go through HBONE',
        );
      }
      return {
        measurements,
        notes: [
          ...targetNotes(measurements, 'ztunnel ×2'),
          `The server ztunnel counted ${mtls} inbound connections over HBONE (mutual TLS, source principal spiffe://cluster.local/ns/bench/sa/client).`,
          ...notes,
          `Nodes emulated on loopback: client ${clientIp}, server ${serverIp}; ztunnel in dedicated mode, local config, shared embedded CA (P-256 root made with openssl).`,
          'The client enters the client ztunnel through SOCKS5 (no root needed); new connections each open an HBONE stream on the pooled mTLS connection, while stunnel4 handshakes every connection.',
          'iperf3 cannot speak SOCKS5, so iperf3 figures cover direct TCP and stunnel4 only.',
        ],
      };
    } finally {
      await clientAgent.close();
      await serverAgent.close();
      await pair.close();
    }
  },
};

export default scenario;
