/** The HBONE pair beside direct TCP and a stunnel4 pair with the same certificates. */

import { Agent } from '../lib/agent.js';
import { createTestPki } from '../lib/certs.js';
import { stunnelPath } from '../lib/stunnel.js';
import { type ComparePathsOptions, comparePaths, directPath } from '../lib/suite.js';
import type { ScenarioContext, ScenarioResult } from '../scenario.js';
import { hbonePath } from './path.js';

export async function compareHbone(
  ctx: ScenarioContext,
  options: {
    fresh?: boolean;
    name?: string;
    figures?: ComparePathsOptions['figures'];
    notes: string[];
  },
): Promise<ScenarioResult> {
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
        hbonePath({
          pki,
          dir: ctx.tmpDir,
          ...(options.fresh ? { fresh: true } : {}),
          ...(options.name ? { name: options.name } : {}),
          ...(ctx.profile ? { profile: { dir: ctx.profileDir } } : {}),
        }),
      ],
      serverAgent,
      clientAgent,
      ...(options.figures ? { figures: options.figures } : {}),
    });
    return {
      measurements,
      notes: [
        ...notes,
        ...options.notes,
        'Same P-256 SPIFFE certificates (openssl-made root) for stunnel4 and hbone; TLS 1.3 with AES-256-GCM on both; hbone proxies run as one esbuild bundle on plain node.',
      ],
    };
  } finally {
    await clientAgent.close();
    await serverAgent.close();
  }
}
