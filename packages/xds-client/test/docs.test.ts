import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { XDS_ERROR_CODES, XdsError } from '../src/index.js';

const pkg = join(dirname(fileURLToPath(import.meta.url)), '..');
const readme = readFileSync(join(pkg, 'README.md'), 'utf8');

describe('documentation', () => {
  it('lists every error code in the README, and no others', () => {
    const documented = new Set(readme.match(/ERR_XDS_[A-Z_]+/g));
    expect([...documented].sort()).toEqual(Object.keys(XDS_ERROR_CODES).sort());
  });

  it('XdsError instanceof works by brand across copies', () => {
    const foreign = Object.assign(new Error('x'), {
      [Symbol.for('@mesh/xds-client.XdsError')]: true,
    });
    expect(foreign instanceof XdsError).toBe(true);
    expect(new Error('y') instanceof XdsError).toBe(false);
  });

  it('runs the README example against the fake control plane and prints what it learned', () => {
    const out = execFileSync(
      process.execPath,
      ['--conditions=@mesh/source', '--import', 'tsx', join(pkg, 'example/print-mesh.ts')],
      { cwd: pkg, encoding: 'utf8', timeout: 30_000 },
    );
    expect(out).toContain('workload c1//v1/Pod/shop/api-0: 10.1.0.5 sa=api HBONE');
    expect(out).toContain('service shop/api.shop.svc.cluster.local: 10.96.0.20 ports=80->8080');
    expect(out).toContain('policy shop/only-shop: ALLOW scope=NAMESPACE rules=1');
    expect(out).toContain('removed: c1//v1/Pod/shop/api-0');
    expect(readme).toContain("import { FakeControlPlane } from '@mesh/xds-client/testing';");
  });
});
