/**
 * Crash injection for durability.test.ts ("chosen crash points"), loaded with `node --import`: counts the
 * process's file-system operations on one run directory and SIGKILLs the process right before one of
 * them, so a kill lands exactly inside a chosen write / fsync / rename / cleanup window. Nothing in lib/
 * knows about it: it wraps node:fs (and node:fs/promises) and re-syncs the ESM named exports.
 *
 *   UNIGAP_CRASH_DIR     the run directory (operations elsewhere are not counted)
 *   UNIGAP_CRASH_AT      kill before the Nth counted operation (1-based), or
 *   UNIGAP_CRASH_BEFORE  kill before the UNIGAP_CRASH_NTH-th (default 1st) operation whose description
 *                        ("<op> <path relative to the run directory>") contains this text
 *   UNIGAP_CRASH_TRACE   append every operation's "<n> <description>" to this file
 */
import fs from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { resolve, sep } from 'node:path';

const dir = process.env.UNIGAP_CRASH_DIR ? resolve(process.env.UNIGAP_CRASH_DIR) : null;
const at = Number(process.env.UNIGAP_CRASH_AT ?? 0);
const before = process.env.UNIGAP_CRASH_BEFORE ?? null;
const nth = Number(process.env.UNIGAP_CRASH_NTH ?? 1);
const trace = process.env.UNIGAP_CRASH_TRACE ?? null;

if (dir) {
  const appendFileSync = fs.appendFileSync;
  const fds = new Map();
  let n = 0;
  let matches = 0;
  const rel = (p) => {
    if (typeof p !== 'string') return null;
    const abs = resolve(p);
    return abs === dir ? '.' : abs.startsWith(dir + sep) ? abs.slice(dir.length + 1) : null;
  };
  const op = (what) => {
    n++;
    if (trace) appendFileSync(trace, `${n} ${what}\n`);
    if (n === at || (before !== null && what.includes(before) && ++matches === nth))
      process.kill(process.pid, 'SIGKILL');
  };
  const byPath = (obj, name) => {
    const f = obj[name];
    obj[name] = function (p, ...rest) {
      const r = rel(p);
      if (r !== null) op(`${name} ${r}`);
      return f.call(this, p, ...rest);
    };
  };
  const byFd = (name) => {
    const f = fs[name];
    fs[name] = function (fd, ...rest) {
      const r = fds.get(fd);
      if (r !== undefined) op(`${name} ${r}`);
      if (name === 'closeSync') fds.delete(fd);
      return f.call(this, fd, ...rest);
    };
  };
  const openSync = fs.openSync;
  fs.openSync = function (p, ...rest) {
    const r = rel(p);
    if (r !== null) op(`openSync ${r}`);
    const fd = openSync.call(this, p, ...rest);
    if (r !== null) fds.set(fd, r);
    return fd;
  };
  for (const name of ['writeSync', 'fsyncSync', 'closeSync']) byFd(name);
  for (const name of ['renameSync', 'rmSync', 'unlinkSync', 'writeFileSync', 'mkdirSync']) byPath(fs, name);
  for (const name of ['rename', 'rm', 'unlink', 'writeFile', 'mkdir', 'readdir', 'readFile']) byPath(fs.promises, name);
  syncBuiltinESMExports();
}
