// A cross-process lock (mkdir-based) so concurrent builds never run two ninja/make jobs in build/.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return e.code === 'EPERM';
  }
}

export function acquireBuildLock(root, timeoutMs = 30 * 60 * 1000) {
  const dir = join(root, '.build-lock');
  const start = Date.now();
  let warned = false;
  for (;;) {
    try {
      mkdirSync(dir);
      writeFileSync(join(dir, 'pid'), String(process.pid));
      // Remove the lock only while it is still ours: a lock released early and since taken by
      // another build must survive this process's exit.
      let released = false;
      const release = () => {
        if (released) return;
        released = true;
        process.removeListener('exit', release);
        try {
          if (Number(readFileSync(join(dir, 'pid'), 'utf8')) !== process.pid) return;
        } catch {
          return;
        }
        rmSync(dir, { recursive: true, force: true });
      };
      process.on('exit', release);
      return release;
    } catch (e) {
      if (e.code !== 'EEXIST') throw e;
      let pid = 0;
      try {
        pid = Number(readFileSync(join(dir, 'pid'), 'utf8'));
      } catch {
        /* being created */
      }
      if (pid && !alive(pid)) {
        rmSync(dir, { recursive: true, force: true });
        continue;
      }
      if (Date.now() - start > timeoutMs) throw new Error(`unigap: timed out waiting for the build lock ${dir}`);
      if (!warned) {
        console.warn(`unigap: waiting for another build (pid ${pid}) to finish...`);
        warned = true;
      }
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 500);
    }
  }
}
