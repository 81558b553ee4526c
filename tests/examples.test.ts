/**
 * The runnable examples (examples/*.ts) exercised at small sizes: each exports main(); the checks are
 * on what main computes, not on printed text. The examples import 'unigap' / 'unigap/tfjs' as a user
 * would, i.e. the built dist/ (npm run test:js builds it first).
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { describe, expect, it } from 'vitest';

import { packageRoot } from '../lib/native.js';
import { main as scoreAndDpo } from '../examples/01-score-and-dpo.js';
import { main as finetune } from '../examples/02-tfjs-dpo-finetune.js';
import { main as loopAdapter } from '../examples/03-loop-tfjs-adapter.js';

async function wasmReason(): Promise<string | null> {
  try {
    const ok = await tf.setBackend('wasm');
    return ok ? null : 'tf.setBackend("wasm") returned false';
  } catch (e) {
    return (e as Error).message;
  } finally {
    await tf.setBackend('cpu');
  }
}
const noWasm = await wasmReason();
if (noWasm) console.log(`[examples.test] skipping example 2 on the WASM backend: ${noWasm}`);

describe('examples', () => {
  it('01-score-and-dpo: the fused DPO equals scoring + dpoLoss, gradients included', () => {
    const r = scoreAndDpo({ pairs: 3, T: 9, V: 40, log: false });
    expect(r.seqSum.length).toBe(6);
    expect(Array.from(r.seqCount)).toEqual([7, 7, 7, 7, 7, 7]); // T − 1 shifted rows − 1 prompt row
    for (const v of r.seqSum) expect(v).toBeLessThan(0);
    expect(Number.isFinite(r.loss)).toBe(true);
    expect(Math.abs(r.fusedLoss - r.loss)).toBeLessThan(1e-5);
    expect(r.maxGradDiff).toBeLessThan(1e-6);
  });

  it('01-score-and-dpo runs as a script', () => {
    const out = execFileSync(process.execPath, ['--import', 'tsx', join('examples', '01-score-and-dpo.ts')], {
      cwd: packageRoot,
      encoding: 'utf8',
    });
    expect(out).toMatch(/DPO loss \(fused from logits\): \d/);
  });

  for (const backend of ['cpu', 'wasm'] as const) {
    it.skipIf(backend === 'wasm' && noWasm !== null)(
      `02-tfjs-dpo-finetune on ${backend}: the DPO loss goes down, no tensors left`,
      async () => {
        const r = await finetune({ backend, steps: 20, log: false });
        expect(r.backend).toBe(backend);
        // The policy starts as the reference, so the sigmoid DPO loss starts at ln 2.
        expect(r.initialLoss).toBeCloseTo(Math.LN2, 4);
        expect(r.finalLoss).toBeLessThan(0.75 * r.initialLoss);
        for (let i = 5; i < r.history.length; i++) expect(r.history[i]).toBeLessThan(r.history[i - 5]);
        expect(r.rewardAccuracy).toBeGreaterThan(0.5);
        expect(r.leaked).toBe(0);
      },
    );
  }

  it('03-loop-tfjs-adapter: the loop improves a tfjs model through a user-written UnifiedModel', async () => {
    const r = await loopAdapter({ rounds: 3, log: false });
    expect(r.rounds.map((m) => m.round)).toEqual([0, 1, 2, 3]);
    for (const m of r.rounds.slice(1)) expect(m.train.dpoPairs).toBeGreaterThan(0);
    // Measured by the external judge, never used for training.
    expect(r.accuracy[3]).toBeGreaterThan(r.accuracy[0] + 0.2);
    expect(r.nonunified[3]).toBeLessThan(r.nonunified[0]);
    expect(r.leaked).toBe(0);
  });
});
