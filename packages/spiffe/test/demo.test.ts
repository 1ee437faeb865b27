import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const exec = promisify(execFile);

describe('identity demo', () => {
  it('issues, prints and verifies an SVID for spiffe://cluster.local/ns/default/sa/demo', async () => {
    const { stdout } = await exec(
      process.execPath,
      [
        '--conditions=@mesh/source',
        '--import',
        'tsx',
        join(import.meta.dirname, '..', 'demo', 'identity-demo.ts'),
      ],
      { encoding: 'utf8', cwd: join(import.meta.dirname, '..') },
    );
    expect(stdout).toMatch(/identity: +spiffe:\/\/cluster\.local\/ns\/default\/sa\/demo/);
    expect(stdout).toMatch(/ca-key\.pem +mode 600/);
    expect(stdout).toMatch(/\[0\] leaf[\s\S]*\[1\] root/);
    expect(stdout).toMatch(
      /OK: spiffe:\/\/cluster\.local\/ns\/default\/sa\/demo chains to "O=cluster\.local"/,
    );
  });
});
