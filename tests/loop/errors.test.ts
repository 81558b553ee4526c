import { afterAll, describe, expect, it } from 'vitest';

import { InvalidTypeError, InvalidValueError, UnknownOptionError } from '../../lib/errors.js';
import { resolveConfig } from '../../lib/loop/config.js';
import { AdapterError } from '../../lib/loop/errors.js';
import { runSelfImprovement } from '../../lib/loop/run.js';
import type { LoopConfig, RunOptions, UnifiedModel } from '../../lib/loop/types.js';
import { cleanTempDirs, opts, tempDir } from './fixtures.js';
import { ToyModel } from './toy.js';

afterAll(cleanTempDirs);

const small: Partial<LoopConfig> = { rounds: 1, samplesPerPrompt: 2 };

async function fails(o: RunOptions) {
  return runSelfImprovement(o).then(
    () => {
      throw new Error('expected a rejection');
    },
    (e) => e,
  );
}

describe('bad options: typed errors naming the problem', () => {
  it.each([
    [{ strategy: 'ppo' }, InvalidValueError, /config\.strategy must be one of 'sft', 'dpo'.*got 'ppo'/],
    [{ strategy: 'c_sft' }, InvalidValueError, /did you mean 'c-sft'/],
    [{ strategy: 'dpo', samplesPerPrompt: 1 }, InvalidValueError, /samplesPerPrompt must be >= 2 for strategy 'dpo'/],
    [
      { strategy: 'c-dpo', samplesPerPrompt: 1 },
      InvalidValueError,
      /samplesPerPrompt must be >= 2 for strategy 'c-dpo'/,
    ],
    [{ cloThreshold: 1.5 }, InvalidValueError, /config\.cloThreshold must be in \[0, 1\], got 1\.5/],
    [{ corrupt: -0.1 }, InvalidValueError, /config\.corrupt must be in \[0, 1\]/],
    [
      { corruptMode: 'acept' },
      InvalidValueError,
      /config\.corruptMode must be one of 'flip', 'accept', 'wrong'.*did you mean 'accept'/,
    ],
    [
      { corruptMode: 1 },
      InvalidValueError,
      /config\.corruptMode must be one of 'flip', 'accept', 'wrong', 'adversarial', got number 1/,
    ],
    [{ corruptMode: null }, InvalidValueError, /config\.corruptMode must be one of 'flip', 'accept', 'wrong'/],
    [{ corrupt_mode: 'accept' }, UnknownOptionError, /unknown option 'corrupt_mode' \(did you mean 'corruptMode'\?\)/],
    [{ acceptThreshold: 2 }, InvalidValueError, /config\.acceptThreshold must be in \[0, 1\]/],
    [
      { guardUnderstanding: 'fix' },
      InvalidValueError,
      /config\.guardUnderstanding must be one of 'fixed', 'own'.*did you mean 'fixed'/,
    ],
    [{ guardTrainGeneration: 1 }, InvalidTypeError, /config\.guardTrainGeneration must be a boolean/],
    [{ guardPrecision: 'yes' }, InvalidTypeError, /config\.guardPrecision must be a boolean/],
    [{ guardTolerance: Number.NaN }, InvalidValueError, /config\.guardTolerance must be in \[0, 1\], got NaN/],
    [{ rounds: 1.5 }, InvalidValueError, /config\.rounds must be an integer/],
    [{ temperature: 0 }, InvalidValueError, /config\.temperature must be > 0/],
    [{ learningrate: 0.1 }, UnknownOptionError, /unknown option 'learningrate' \(did you mean 'learningRate'\?\)/],
  ] as [Record<string, unknown>, new (...a: never[]) => Error, RegExp][])('%j', async (config, cls, msg) => {
    const err = await fails(opts({ ...small, ...(config as Partial<LoopConfig>) }));
    expect(err).toBeInstanceOf(cls);
    expect(err.message).toMatch(msg);
    expect(err.code).toMatch(/^ERR_UNIGAP_/);
  });

  it("corruptMode: defaults to 'flip', accepts 'accept'; 'wrong' and 'adversarial' need a judge when corrupt > 0", () => {
    expect(resolveConfig(undefined, true).corruptMode).toBe('flip');
    expect(resolveConfig({ corruptMode: 'wrong', corrupt: 1 }, true).corruptMode).toBe('wrong');
    expect(resolveConfig({ corruptMode: 'wrong', corrupt: 0 }, false).corruptMode).toBe('wrong');
    expect(() => resolveConfig({ corruptMode: 'wrong', corrupt: 0.5 }, false)).toThrow(
      /corruptMode 'wrong' needs an external judge/,
    );
    expect(resolveConfig({ corruptMode: 'adversarial', corrupt: 1 }, true).corruptMode).toBe('adversarial');
    expect(resolveConfig({ corruptMode: 'adversarial', corrupt: 0 }, false).corruptMode).toBe('adversarial');
    let err: unknown;
    try {
      resolveConfig({ corruptMode: 'adversarial', corrupt: 0.5 }, false);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(InvalidValueError);
    expect((err as InvalidValueError).code).toMatch(/^ERR_UNIGAP_/);
    expect((err as Error).message).toMatch(/corruptMode 'adversarial' needs an external judge/);
    expect(resolveConfig({ corruptMode: 'accept', corrupt: 0.5 }, true)).toMatchObject({
      corruptMode: 'accept',
      corrupt: 0.5,
    });
  });

  it('misspelled run option, guard without a judge, probe leaking into train, resume without runDir', async () => {
    const o = opts(small);
    const misspelled = await fails({ ...o, probePrompt: o.probePrompts } as unknown as RunOptions);
    expect(misspelled).toBeInstanceOf(UnknownOptionError);
    expect(misspelled.message).toMatch(/did you mean 'probePrompts'/);
    const noJudge = await fails({ ...opts({ ...small, guard: true }), judge: undefined });
    expect(noJudge.message).toMatch(/guard needs an external judge/);
    const leak = await fails({ ...o, probePrompts: [o.trainPrompts[0]] });
    expect(leak.message).toMatch(/held out from trainPrompts \(shared ids: p-/);
    expect((await fails({ ...o, resume: true })).message).toMatch(/resume needs runDir/);
    expect((await fails({ ...o, trainPrompts: [] })).message).toMatch(/trainPrompts is empty/);
  });
});

type Orig = Pick<ToyModel, 'generate' | 'judge' | 'forward' | 'step'>;

/** The toy model with methods replaced; `patch` gets the original (bound) methods. */
function broken(patch: (m: Orig) => Partial<UnifiedModel>): UnifiedModel {
  const m = new ToyModel();
  const orig: Orig = {
    generate: m.generate.bind(m),
    judge: m.judge.bind(m),
    forward: m.forward.bind(m),
    step: m.step.bind(m),
  };
  return Object.assign(m, patch(orig));
}

describe('broken adapters: AdapterError naming the method and the problem', () => {
  const cases: [string, (m: Orig) => Partial<UnifiedModel>, string, RegExp][] = [
    [
      'too few images',
      (m) => ({ generate: (p, n, o) => m.generate(p, n, o).slice(1) }),
      'generate',
      /returned 1 images .* asked for 2/,
    ],
    [
      'token out of range',
      (m) => ({
        generate: (p, n, o) => m.generate(p, n, o).map((x) => ({ tokens: Int32Array.of(99, 0), payload: x.payload })),
      }),
      'generate',
      /token 99 at position 0, outside \[0, 8\)/,
    ],
    [
      'tokens not an Int32Array',
      (m) => ({
        generate: (p, n, o) =>
          m.generate(p, n, o).map((x) => ({ tokens: Array.from(x.tokens) as unknown as Int32Array })),
      }),
      'generate',
      /tokens: Int32Array, got Array\(2\)/,
    ],
    [
      'NaN pYes',
      () => ({ judge: () => ({ pYes: Number.NaN, accept: true }) }),
      'judge',
      /pYes must be a number in \[0, 1\], got number NaN/,
    ],
    [
      'accept not boolean',
      () => ({ judge: () => ({ pYes: 0.5, accept: 1 as unknown as boolean }) }),
      'judge',
      /accept must be a boolean/,
    ],
    [
      'NaN logits',
      (m) => ({
        forward: (b) => {
          const lb = m.forward(b);
          lb.logits[lb.vocab + 3] = Number.NaN;
          return lb;
        },
      }),
      'forward',
      /logits contain NaN \(row 1, sequence 0\)/,
    ],
    [
      'logits of the wrong length',
      (m) => ({
        forward: (b) => {
          const lb = m.forward(b);
          return { ...lb, logits: lb.logits.subarray(1) };
        },
      }),
      'forward',
      /logits has \d+ elements, expected rows x vocab/,
    ],
    [
      'labels that are not the image tokens',
      (m) => ({
        forward: (b) => {
          const lb = m.forward(b);
          lb.labels[0] = (lb.labels[0] + 1) % 8;
          return lb;
        },
      }),
      'forward',
      /labels of sequence 0 .* do not match its image tokens/,
    ],
    [
      'offsets of the wrong length',
      (m) => ({ forward: (b) => ({ ...m.forward(b), offsets: new Int32Array(1) }) }),
      'forward',
      /offsets has 1 entries, expected batch size \+ 1/,
    ],
  ];
  it.each(cases)('%s', async (_name, patch, method, msg) => {
    const err = await fails(opts({ ...small, strategy: 'sft' }, { model: broken(patch) }));
    expect(err).toBeInstanceOf(AdapterError);
    expect(err.code).toBe('ERR_UNIGAP_ADAPTER');
    expect(err.method).toBe(method);
    expect(err.message).toMatch(msg);
  });

  it('a DPO forward with NaN logits, a judge returning a non-boolean, a model missing a method', async () => {
    const nan = broken((m) => ({
      forward: (b) => {
        const lb = m.forward(b);
        lb.logits.fill(Number.NaN);
        return lb;
      },
    }));
    const e1 = await fails(opts({ ...small, strategy: 'dpo' }, { model: nan }));
    expect(e1).toBeInstanceOf(AdapterError);
    expect(e1.message).toMatch(/NaN/);
    const e2 = await fails(opts(small, { judge: { name: 'bad', verify: () => 'yes' as unknown as boolean } }));
    expect(e2).toBeInstanceOf(AdapterError);
    expect(e2.method).toBe('verify');
    const noStep = new ToyModel() as unknown as Record<string, unknown>;
    noStep.step = undefined;
    const e3 = await fails(opts(small, { model: noStep as unknown as UnifiedModel }));
    expect(e3.message).toMatch(/UnifiedModel\.step must be a function/);
  });

  it('no partial state is left that a resume could pick up silently after an adapter error in round 1', async () => {
    const dir = await tempDir();
    let steps = 0;
    const m = broken((t) => ({
      step: (g, o) => {
        if (++steps > 2) throw new Error('boom');
        t.step(g, o);
      },
    }));
    await expect(runSelfImprovement(opts({ ...small, rounds: 2 }, { model: m, runDir: dir }))).rejects.toThrow('boom');
    // Round 0 was committed; a resume with a healthy model continues from it.
    const r = await runSelfImprovement(opts({ ...small, rounds: 2 }, { runDir: dir, resume: true }));
    expect(r.rounds.map((x) => x.round)).toEqual([0, 1, 2]);
  });
});
