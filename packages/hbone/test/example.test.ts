import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../..', import.meta.url));

describe('README example', () => {
  it('the TCP proxy example tunnels a message through HBONE and back', {
    timeout: 60_000,
  }, async () => {
    const out = await new Promise<string>((resolve, reject) =>
      execFile(
        process.execPath,
        ['--conditions=@mesh/source', '--import', 'tsx', 'packages/hbone/examples/tcp-proxy.ts'],
        { cwd: root, timeout: 50_000 },
        (err, stdout, stderr) =>
          err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout),
      ),
    );
    expect(out).toContain('client: got "hello through HBONE"');
    expect(out).toMatch(/server: tunnel 127\.0\.0\.1:\d+ closed, 19 B in, 19 B out/);
  });
});
