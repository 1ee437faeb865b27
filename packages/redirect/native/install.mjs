// `install` script: node-gyp-build (use a prebuild or the existing build, else compile), with
// node-gyp pointed at the headers of the running Node when they are installed beside it, so
// a build needs no header download (nodejs.org is often unreachable where this runs).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';

const env = { ...process.env };
const prefix = resolve(dirname(process.execPath), '..');
if (!env.npm_config_nodedir && existsSync(join(prefix, 'include', 'node', 'node_api.h'))) {
  env.npm_config_nodedir = prefix;
}
const bin = createRequire(import.meta.url).resolve('node-gyp-build/bin.js');
const result = spawnSync(process.execPath, [bin], { stdio: 'inherit', env });
process.exit(result.status ?? 1);
