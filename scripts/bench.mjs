#!/usr/bin/env node
// Runs every bench/*.bench.ts (or those named on the command line) with tsx, one process each.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const wanted = process.argv.slice(2);
const all = readdirSync(join(root, 'bench')).filter((f) => f.endsWith('.bench.ts'));
const files = wanted.length ? all.filter((f) => wanted.some((w) => f.includes(w))) : all;
if (files.length === 0) {
  console.log('no benchmarks yet');
  process.exit(0);
}
let failed = 0;
for (const f of files) {
  console.log(`\n=== ${f}`);
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(root, 'bench', f)], { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) failed++;
}
process.exit(failed ? 1 : 0);
