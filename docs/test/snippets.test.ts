import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  guideFiles,
  includedSnippets,
  snippetFiles,
  snippetsDir,
  withSnippets,
} from '../scripts/snippets.js';

/** What each snippet must print: the guides quote these results. */
const expectations: Record<string, RegExp[]> = {
  'spiffe-identity.ts': [
    /^spiffe:\/\/cluster\.local\/ns\/shop\/sa\/api cluster\.local\/ns\/shop\/sa\/api$/m,
    /^valid until true$/m,
    /^verified spiffe:\/\/cluster\.local\/ns\/shop\/sa\/api$/m,
    /^ERR_SPIFFE_ID_NOT_ISTIO$/m,
  ],
  'hbone-tunnel.ts': [
    /^client: HELLO MESH from spiffe:\/\/cluster\.local\/ns\/shop\/sa\/api$/m,
    /^server: tunnel from spiffe:\/\/cluster\.local\/ns\/shop\/sa\/web closed, 10 bytes in$/m,
    /^client: ERR_HBONE_HTTP_STATUS 401$/m,
  ],
  'xds-client-watch.ts': [
    /^held: \[ 'Kubernetes\/\/Pod\/shop\/api-0' \]$/m,
    /^by IP: api-0$/m,
    /^added: \[ 'Kubernetes\/\/Pod\/shop\/api-1' \]$/m,
  ],
  'l4-rbac-decide.ts': [
    /^WARN_RBAC_L7_FIELD_IGNORED$/m,
    /^allowed by: shop\/allow-web$/m,
    /^explicitly denied by: shop\/no-legacy-writes$/m,
    /^ {2}\[channel\] spiffe:\/\/cluster\.local\/ns\/legacy\/sa\/batch -> explicitly-denied$/m,
    /^now denied: \[ 'allow policies exist, but none allowed' \]$/m,
  ],
  'metrics-relay.ts': [
    /^access log: info connection complete$/m,
    /^text\/plain; version=0\.0\.4; charset=utf-8$/m,
    /^istio_tcp_sent_bytes_total\{reporter="source",source_workload="sleep",.*\} 2048$/m,
  ],
  'ztunnel-embedded.ts': [
    /^readiness: 200 ready$/m,
    /^workloads: \[ 'httpbin' \]$/m,
    /^ERR_ZTUNNEL_CONFIG_INVALID$/m,
  ],
  'redirect-rules.ts': [
    /REDIRECT --to-ports 15001$/m,
    /REDIRECT --to-ports 15006$/m,
    /^true$/m,
    /^-4 rule add fwmark 0x111\/0xfff pref 32764 lookup 100$/m,
  ],
};

function run(file: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--conditions=@mesh/source', '--import', 'tsx', file], {
      cwd: snippetsDir,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('the guide snippets', () => {
  it('appear in the guides exactly as the files (run `pnpm --filter @mesh/docs snippets`)', () => {
    for (const guide of guideFiles()) {
      const text = readFileSync(guide, 'utf8');
      expect(text, guide).toBe(withSnippets(text));
    }
  });

  it('are each included by a guide and each have expectations', () => {
    const included = new Set(
      guideFiles().flatMap((g) => includedSnippets(readFileSync(g, 'utf8'))),
    );
    expect(
      snippetFiles().filter((f) => !included.has(f)),
      'snippets no guide shows',
    ).toEqual([]);
    expect(
      snippetFiles().filter((f) => !(f in expectations)),
      'snippets without expectations',
    ).toEqual([]);
    expect(
      [...included].filter((f) => !snippetFiles().includes(f)),
      'missing snippet files',
    ).toEqual([]);
  });

  for (const [file, patterns] of Object.entries(expectations)) {
    it.concurrent(`${file} runs on its own, exits 0 and prints what the guide says`, async () => {
      const { code, stdout, stderr } = await run(join(snippetsDir, file));
      expect(code, stderr).toBe(0);
      for (const p of patterns) expect(stdout).toMatch(p);
    });
  }
});
