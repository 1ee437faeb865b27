/** The HBONE pair (client proxy process + server process) as a bench `TrafficPath`. */

import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import type { TestPki } from '../lib/certs.js';
import { nodeArgs, spawnManaged } from '../lib/children.js';
import type { TrafficPath } from '../lib/suite.js';
import type { ProxyConfig } from './proxy-main.js';

const MAIN = fileURLToPath(new URL('./proxy-main.ts', import.meta.url));

/**
 * Bundle the proxy (and @mesh/hbone from source) into one plain JS file, so the measured
 * processes run as a deployment would: no TypeScript loader thread inflating RSS and CPU.
 */
async function bundle(dir: string): Promise<string> {
  const outfile = join(dir, 'hbone-proxy.mjs');
  await build({
    entryPoints: [MAIN],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    conditions: ['@mesh/source'],
    logLevel: 'error',
  });
  return outfile;
}

export function hbonePath(options: {
  pki: TestPki;
  /** Client-side proxy opens a fresh mTLS connection per tunnel instead of pooling. */
  fresh?: boolean;
  name?: string;
  profile?: { dir: string };
  /** Scratch directory for the bundled proxy. */
  dir: string;
}): TrafficPath {
  const { pki } = options;
  const leaf = (name: 'client' | 'server') => ({
    certPath: pki.leaves[name]!.certPath,
    keyPath: pki.leaves[name]!.keyPath,
    caPath: pki.caPath,
    identity: pki.leaves[name]!.spiffeId,
  });
  let script: Promise<string> | undefined;
  const start = async (label: string, config: ProxyConfig, signal: AbortSignal) => {
    script ??= bundle(options.dir);
    const proc = spawnManaged(
      process.execPath,
      nodeArgs(await script, [JSON.stringify(config)], {
        typescript: false,
        ...(options.profile ? { profile: { dir: options.profile.dir, name: label } } : {}),
      }),
      { name: label },
    );
    const m = await proc.waitForOutput(/READY (\d+)/, { timeoutMs: 20_000, signal });
    return { proc, port: Number(m[1]) };
  };
  return {
    name: options.name ?? 'hbone',
    setup: async (target, kind, signal) => {
      const server = await start(
        `hbone server (${kind})`,
        { role: 'server', target, ...leaf('server') },
        signal,
      );
      try {
        const client = await start(
          `hbone client (${kind})`,
          {
            role: 'client',
            target: { host: '127.0.0.1', port: server.port },
            ...leaf('client'),
            peerIdentity: pki.leaves.server!.spiffeId,
            ...(options.fresh ? { fresh: true } : {}),
          },
          signal,
        );
        return {
          dial: { target: { host: '127.0.0.1', port: client.port } },
          processes: [
            { name: 'hbone client', pid: client.proc.pid },
            { name: 'hbone server', pid: server.proc.pid },
          ],
          close: async () => {
            await client.proc.stop({ graceMs: 2000 });
            await server.proc.stop({ graceMs: 2000 });
          },
        };
      } catch (err) {
        await server.proc.stop({ graceMs: 500 });
        throw err;
      }
    },
  };
}
