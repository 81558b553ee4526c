import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';

import { describe, expect, it } from 'vitest';

import { backendInfo, setIsa, UnsupportedIsaError, InvalidValueError } from '../lib/index.js';
import { distEntry, runNode } from './helpers.js';

const info = backendInfo();

describe('backendInfo', () => {
  it('loads the addon and reports the CPU tier from CPUID and XCR0', () => {
    expect(info.loaded).toBe(true);
    expect(info.loadError).toBeNull();
    const f = info.cpu.features;
    const avx512 = f.avx512f && f.avx512bw && f.avx512vl && f.avx512dq && f.osZmm;
    const avx2 = f.avx2 && f.fma && f.f16c && f.osYmm;
    expect(info.cpu.bestIsa).toBe(avx512 ? 'avx512' : avx2 ? 'avx2' : 'scalar');
    expect(info.cpu.isa).toBe(process.env.UNIGAP_ISA ? process.env.UNIGAP_ISA : info.cpu.bestIsa);
    expect(info.cpu.threads).toBeGreaterThanOrEqual(1);
  });

  it('reports CUDA honestly: compiled or not, and a reason when there is no device', () => {
    expect(typeof info.cuda.compiled).toBe('boolean');
    if (info.cuda.deviceCount === 0) {
      expect(info.cuda.reason).toMatch(/\w/);
      expect(info.cuda.devices).toEqual([]);
    } else {
      expect(info.cuda.devices[0].computeCapability).toMatch(/^\d+\.\d+$/);
    }
  });

  it('works from the package entry (ESM import of "unigap" from the repo root)', () => {
    const out = runNode(`import { backendInfo } from 'unigap'; console.log(JSON.stringify(backendInfo()));`);
    const parsed = JSON.parse(out);
    expect(parsed.loaded).toBe(true);
    expect(parsed.cpu.isa).toBe(info.cpu.bestIsa);
  });

  it('works through require() as well', () => {
    const out = runNode(
      `import { createRequire } from 'node:module'; const r = createRequire(process.cwd() + '/'); console.log(r('unigap').backendInfo().loaded);`,
    );
    expect(out.trim()).toBe('true');
  });
});

describe('forced ISA tiers', () => {
  const order = ['scalar', 'avx2', 'avx512'] as const;
  const available = order.slice(0, order.indexOf(info.cpu.bestIsa ?? 'scalar') + 1);

  for (const tier of available) {
    it(`UNIGAP_ISA=${tier} shows in backendInfo()`, () => {
      const out = runNode(
        `import { backendInfo } from '${distEntry}'; console.log(JSON.stringify(backendInfo().cpu));`,
        {
          UNIGAP_ISA: tier,
        },
      );
      const cpu = JSON.parse(out);
      expect(cpu.isa).toBe(tier);
      expect(cpu.isaError).toBeNull();
    });
  }

  it('an unknown UNIGAP_ISA is reported, not a crash', () => {
    const out = runNode(`import { backendInfo } from '${distEntry}'; console.log(JSON.stringify(backendInfo().cpu));`, {
      UNIGAP_ISA: 'sse9',
    });
    expect(JSON.parse(out).isaError).toMatch(/not a tier/);
  });

  it('setIsa switches tiers at run time and refuses unknown ones', () => {
    for (const tier of available) {
      expect(setIsa(tier)).toBe(tier);
      expect(backendInfo().cpu.isa).toBe(tier);
    }
    expect(() => setIsa('sse9' as never)).toThrow(InvalidValueError);
    if (info.cpu.bestIsa !== 'avx512') expect(() => setIsa('avx512')).toThrow(UnsupportedIsaError);
    setIsa(info.cpu.bestIsa!);
  });

  it('UNIGAP_THREADS sizes the pool', () => {
    const out = runNode(`import { backendInfo } from '${distEntry}'; console.log(backendInfo().cpu.threads);`, {
      UNIGAP_THREADS: '3',
    });
    expect(out.trim()).toBe('3');
  });
});

describe('load failure', () => {
  it('a missing addon gives one ERR_UNIGAP_NATIVE_LOAD error listing the cause and the fix', () => {
    const out = runNode(
      `import { backendInfo } from '${distEntry}'; import { loadNative } from '${distEntry.replace('index.js', 'native.js')}';
       const i = backendInfo();
       try { loadNative(); } catch (e) { console.log(JSON.stringify({ loaded: i.loaded, code: e.code, name: e.name, message: e.message, causes: e.causes })); }`,
      { UNIGAP_NATIVE_PATH: '/nonexistent/unigap.node' },
    );
    const r = JSON.parse(out);
    expect(r.loaded).toBe(false);
    expect(r.code).toBe('ERR_UNIGAP_NATIVE_LOAD');
    expect(r.name).toBe('NativeLoadError');
    expect(r.causes[0]).toMatch(/not found/);
    expect(r.message).toMatch(/Fix: run `npm rebuild unigap`/);
  });

  it('a corrupt addon file reports the loader error', () => {
    const dir = mkdtempSync(join(tmpdir(), 'unigap-'));
    const bad = join(dir, 'unigap.node');
    writeFileSync(bad, 'not an ELF file');
    const out = runNode(
      `import { loadNative } from '${distEntry.replace('index.js', 'native.js')}';
       try { loadNative(); console.log('loaded?!'); } catch (e) { console.log(JSON.stringify({ code: e.code, causes: e.causes })); }`,
      { UNIGAP_NATIVE_PATH: bad },
    );
    const r = JSON.parse(out);
    expect(r.code).toBe('ERR_UNIGAP_NATIVE_LOAD');
    expect(r.causes[0]).toMatch(/invalid ELF header|file too short/);
  });

  it('a Debug build is used only when asked for (UNIGAP_BUILD_TYPE=debug)', () => {
    const out = runNode(
      `import { loadNative } from '${distEntry.replace('index.js', 'native.js')}';
       try { loadNative(); console.log('ok'); } catch (e) { console.log(e.causes.join('|')); }`,
      { UNIGAP_BUILD_TYPE: 'debug' },
    );
    // Either a Debug build exists and loads, or the message names the Debug path and the fix.
    expect(out.trim() === 'ok' || /build\/Debug\/unigap\.node: not found/.test(out)).toBe(true);
  });
});

describe('worker_threads', () => {
  it('the addon loads and answers in 4 workers at once', async () => {
    const code = `
      const { parentPort } = require('node:worker_threads');
      import(${JSON.stringify(distEntry)}).then((m) => {
        const i = m.backendInfo();
        parentPort.postMessage({ loaded: i.loaded, isa: i.cpu.isa });
      }, (e) => parentPort.postMessage({ error: String(e) }));`;
    const results = await Promise.all(
      Array.from(
        { length: 4 },
        () =>
          new Promise<{ loaded?: boolean; isa?: string; error?: string }>((resolve, reject) => {
            const w = new Worker(code, { eval: true });
            w.once('message', (m) => {
              resolve(m);
              void w.terminate();
            });
            w.once('error', reject);
          }),
      ),
    );
    for (const r of results) {
      expect(r.error).toBeUndefined();
      expect(r.loaded).toBe(true);
      expect(r.isa).toBe(backendInfo().cpu.isa);
    }
  });
});
