// Lists sources for binding.gyp (the CPU-only fallback build), mirroring CMakeLists.txt's globs.
// Usage: node scripts/gyp-sources.cjs scalar|avx2|avx512|core|napi
const fs = require('node:fs');
const path = require('node:path');
const root = path.join(__dirname, '..');
const kind = process.argv[2];
const rel = (p) => path.relative(root, p).split(path.sep).join('/');
const list = (dir, pred) =>
  fs.existsSync(path.join(root, dir))
    ? fs
        .readdirSync(path.join(root, dir))
        .filter(pred)
        .map((f) => rel(path.join(root, dir, f)))
    : [];
const families = fs
  .readdirSync(path.join(root, 'native/cpu'), { withFileTypes: true })
  .filter((d) => d.isDirectory())
  .map((d) => `native/cpu/${d.name}`);
const isaOf = (f) =>
  /^scalar/.test(f) ? 'scalar' : /^avx512/.test(f) ? 'avx512' : /^avx2/.test(f) ? 'avx2' : 'common';
let out = [];
if (kind === 'core') {
  out = list('native/cpu', (f) => f.endsWith('.cpp'));
  for (const d of families) out.push(...list(d, (f) => f.endsWith('.cpp') && isaOf(f) === 'common'));
} else if (kind === 'napi') {
  out = list('native/napi', (f) => f.endsWith('.cpp'));
} else {
  for (const d of families) out.push(...list(d, (f) => f.endsWith('.cpp') && isaOf(f) === kind));
}
// gyp needs at least one source per static library.
if (out.length === 0) out.push('native/cpu/empty.c');
process.stdout.write(out.join(' '));
