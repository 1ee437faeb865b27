#!/usr/bin/env node
// tsc does not emit plain .js sources: copy the generated protobuf code into dist/ after it.
import { cpSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const pkg = resolve(dirname(fileURLToPath(import.meta.url)), '..');
for (const file of ['proto.js', 'proto.d.ts']) {
  cpSync(join(pkg, 'src/gen', file), join(pkg, 'dist/gen', file));
}
