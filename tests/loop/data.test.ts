import { describe, expect, it } from 'vitest';

import { initPool, rankByPassRate, roundData } from '../../lib/loop/curriculum.js';
import { DEFAULT_LOOP_CONFIG } from '../../lib/loop/config.js';
import { buildDpoPairs, buildSftSet, corruptJudgments, discardPool } from '../../lib/loop/data.js';
import type { LoopConfig, PromptSamples } from '../../lib/loop/types.js';
import { ps } from './fixtures.js';

const data = [
  ps('a', 'color', [
    [0.9, true],
    [0.95, true],
    [0.2, false],
    [0.1, false],
  ]),
  ps('b', 'color', [
    [0.4, false],
    [0.6, true],
  ]),
  ps('c', 'shape', [
    [0.3, false],
    [0.05, false],
  ]),
  ps('d', 'shape', [[0.7, true]]),
];
const tok = (d: PromptSamples, i: number) => d.samples[i].image.tokens;

describe('data', () => {
  it('SFT set is every self-accepted sample', () => {
    const s = buildSftSet(data);
    expect(s.map((e) => [e.prompt.id, e.tokens[0]])).toEqual([
      ['a', 0],
      ['a', 1],
      ['b', 1],
      ['d', 0],
    ]);
  });

  it('DPO best-worst pairs: most confident accepted vs least confident rejected', () => {
    const p = buildDpoPairs(data);
    expect(p.length).toBe(2); // c has no accepted, d no rejected
    expect(p[0].prompt.id).toBe('a');
    expect(p[0].chosen).toBe(tok(data[0], 1)); // pYes 0.95
    expect(p[0].rejected).toBe(tok(data[0], 3)); // pYes 0.1
    expect([p[0].chosenPYes, p[0].rejectedPYes]).toEqual([0.95, 0.1]);
    expect(p[1].chosen).toBe(tok(data[1], 1));
    expect(p[1].rejected).toBe(tok(data[1], 0));
  });

  it('DPO all pairs: accepted x rejected', () => {
    const p = buildDpoPairs(data, 'all');
    expect(p.length).toBe(2 * 2 + 1);
    expect(p.slice(0, 4).map((x) => [x.chosen[0], x.rejected[0]])).toEqual([
      [0, 2],
      [0, 3],
      [1, 2],
      [1, 3],
    ]);
  });

  it('discard pool: prompts with no accepted sample', () => {
    expect(discardPool(data)).toEqual(['c']);
  });

  it('corruption flips exactly round(share * n), deterministically by seed, without touching the input', () => {
    const n = data.reduce((k, d) => k + d.samples.length, 0); // 9
    const flips = (c: PromptSamples[]) =>
      c.flatMap((d, i) => d.samples.map((s, j) => s.judgment.accept !== data[i].samples[j].judgment.accept));
    const c1 = corruptJudgments(data, 0.5, 7, 1);
    expect(flips(c1).filter(Boolean).length).toBe(Math.round(0.5 * n));
    expect(flips(corruptJudgments(data, 0.5, 7, 1))).toEqual(flips(c1));
    expect(flips(corruptJudgments(data, 0.5, 8, 1))).not.toEqual(flips(c1));
    expect(flips(corruptJudgments(data, 1, 7, 1)).every(Boolean)).toBe(true);
    expect(flips(corruptJudgments(data, 0, 7, 1)).some(Boolean)).toBe(false);
    // pYes follows the flip
    c1.forEach((d, i) =>
      d.samples.forEach((s, j) => {
        const o = data[i].samples[j].judgment;
        expect(s.judgment.pYes).toBeCloseTo(s.judgment.accept === o.accept ? o.pYes : 1 - o.pYes);
      }),
    );
    expect(data[0].samples[0].judgment).toEqual({ pYes: 0.9, accept: true });
  });

  describe("corruptMode 'accept': only self-rejected judgments are marked accepted", () => {
    // 5 of the 9 samples are self-rejected (a: 2, b: 1, c: 2).
    const rejected = data.flatMap((d) => d.samples).filter((s) => !s.judgment.accept).length;
    const changed = (c: PromptSamples[]) =>
      c.flatMap((d, i) =>
        d.samples.flatMap((s, j) => (s.judgment.accept !== data[i].samples[j].judgment.accept ? [`${i}.${j}`] : [])),
      );

    it.each([0, 0.2, 0.5, 0.7, 1])(
      'share %d: exactly round(share * rejected), all of them rejected → accepted',
      (share) => {
        const c = corruptJudgments(data, share, 7, 1, 'accept');
        const ch = changed(c);
        expect(ch.length).toBe(Math.round(share * rejected));
        for (const key of ch) {
          const [i, j] = key.split('.').map(Number);
          const o = data[i].samples[j].judgment;
          expect(o.accept).toBe(false);
          expect(c[i].samples[j].judgment.accept).toBe(true);
          expect(c[i].samples[j].judgment.pYes).toBeCloseTo(1 - o.pYes);
        }
        // every accepted judgment and every unchosen rejected one is untouched (pYes included)
        c.forEach((d, i) =>
          d.samples.forEach((s, j) => {
            if (!ch.includes(`${i}.${j}`)) expect(s.judgment).toEqual(data[i].samples[j].judgment);
            expect(s.image).toBe(data[i].samples[j].image);
          }),
        );
        // accepted ones never become rejected
        expect(c.flatMap((d) => d.samples).filter((s) => s.judgment.accept).length).toBe(
          9 - rejected + Math.round(share * rejected),
        );
      },
    );

    it('deterministic by (seed, round); another seed or round picks others; the input is untouched', () => {
      const before = JSON.stringify(data.map((d) => d.samples.map((s) => s.judgment)));
      const c1 = changed(corruptJudgments(data, 0.4, 7, 1, 'accept'));
      expect(c1.length).toBe(2);
      expect(changed(corruptJudgments(data, 0.4, 7, 1, 'accept'))).toEqual(c1);
      const others = [
        [8, 1],
        [9, 1],
        [7, 2],
        [7, 3],
      ].map(([seed, round]) => changed(corruptJudgments(data, 0.4, seed, round, 'accept')));
      expect(others.some((o) => JSON.stringify(o) !== JSON.stringify(c1))).toBe(true);
      expect(JSON.stringify(data.map((d) => d.samples.map((s) => s.judgment)))).toBe(before);
    });

    it("the default mode is 'flip' (the same draw as before the option existed)", () => {
      expect(changed(corruptJudgments(data, 0.5, 7, 1))).toEqual(changed(corruptJudgments(data, 0.5, 7, 1, 'flip')));
    });

    it('false positives enter the SFT set; the discard pool empties at share 1', () => {
      const c = corruptJudgments(data, 1, 7, 0, 'accept');
      expect(buildSftSet(c).length).toBe(9);
      expect(discardPool(c)).toEqual([]);
    });
  });
});

describe("corruptMode 'wrong': only self-rejected samples the external judge finds wrong are marked accepted", () => {
  // external verdicts: rejected-wrong: a.2, a.3, b.0, c.1; rejected-right: c.0; accepted-wrong: a.0.
  const withVerdicts = [
    ps('a', 'color', [
      [0.9, true, false],
      [0.95, true, true],
      [0.2, false, false],
      [0.1, false, false],
    ]),
    ps('b', 'color', [
      [0.4, false, false],
      [0.6, true, true],
    ]),
    ps('c', 'shape', [
      [0.3, false, true],
      [0.1, false, false],
    ]),
  ];
  const eligible = ['0.2', '0.3', '1.0', '2.1'];
  const changed = (c: PromptSamples[]) =>
    c.flatMap((d, i) =>
      d.samples.flatMap((s, j) =>
        s.judgment.accept !== withVerdicts[i].samples[j].judgment.accept ? [`${i}.${j}`] : [],
      ),
    );

  it.each([0, 0.25, 0.5, 0.75, 1])('share %d: exactly round(share * rejected-wrong), never a right image', (share) => {
    const c = corruptJudgments(withVerdicts, share, 7, 1, 'wrong');
    const ch = changed(c);
    expect(ch.length).toBe(Math.round(share * eligible.length));
    for (const key of ch) {
      expect(eligible).toContain(key);
      const [i, j] = key.split('.').map(Number);
      expect(c[i].samples[j].judgment).toEqual({ pYes: 1 - withVerdicts[i].samples[j].judgment.pYes, accept: true });
      expect(c[i].samples[j].external).toBe(false);
    }
    // the right image the model rejected (c.0) is never corrupted; accepted ones are untouched
    expect(c[2].samples[0].judgment).toEqual(withVerdicts[2].samples[0].judgment);
    expect(c[0].samples[0].judgment).toEqual(withVerdicts[0].samples[0].judgment);
  });

  it('share 1: the SFT set is the self-accepted samples plus every rejected wrong one', () => {
    const sft = buildSftSet(corruptJudgments(withVerdicts, 1, 7, 0, 'wrong'));
    expect(sft.length).toBe(3 + eligible.length);
  });

  it('samples without an external verdict are never corrupted', () => {
    const c = corruptJudgments(data, 1, 7, 0, 'wrong');
    expect(c.map((d) => d.samples.map((s) => s.judgment))).toEqual(data.map((d) => d.samples.map((s) => s.judgment)));
  });
});

describe("corruptMode 'adversarial': a share of all samples gets the label opposite to the external verdict", () => {
  // A round with verdicts: 5 right and 7 wrong images; the model's own errors: a.1 accepted-wrong (false
  // positive), c.0 rejected-right (false negative); e has no verdict.
  const round = [
    ps('a', 'color', [
      [0.9, true, true],
      [0.8, true, false],
      [0.2, false, false],
      [0.1, false, false],
    ]),
    ps('b', 'color', [
      [0.4, false, false],
      [0.6, true, true],
      [0.7, true, true],
    ]),
    ps('c', 'shape', [
      [0.3, false, true],
      [0.1, false, false],
      [0.05, false, false],
    ]),
    ps('d', 'shape', [
      [0.55, true, true],
      [0.45, false, false],
    ]),
    ps('e', 'count', [[0.2, false]]),
  ];
  const withVerdict = round.flatMap((d) => d.samples).filter((s) => s.external !== undefined).length; // 12
  const key = (i: number, j: number) => `${i}.${j}`;
  const changed = (c: PromptSamples[], base: PromptSamples[] = round) =>
    c.flatMap((d, i) =>
      d.samples.flatMap((s, j) => (s.judgment.accept !== base[i].samples[j].judgment.accept ? [key(i, j)] : [])),
    );
  const antiVerdict = (c: PromptSamples[]) =>
    c.flatMap((d, i) =>
      d.samples.flatMap((s, j) => (s.external !== undefined && s.judgment.accept === !s.external ? [key(i, j)] : [])),
    );

  it('with a judge that agrees with every verdict, exactly round(share * n) labels become anti-verdict', () => {
    // The same round judged perfectly: every chosen sample changes, so the count is exact.
    const perfect = round.map((d) => ({
      prompt: d.prompt,
      samples: d.samples.map((s) =>
        s.external === undefined ? s : { ...s, judgment: { pYes: s.external ? 0.9 : 0.1, accept: s.external } },
      ),
    }));
    for (const share of [0, 0.25, 0.5, 0.75, 1]) {
      const c = corruptJudgments(perfect, share, 7, 1, 'adversarial');
      const ch = changed(c, perfect);
      expect(ch.length).toBe(Math.round(share * withVerdict));
      expect(antiVerdict(c)).toEqual(ch);
      for (const k of ch) {
        const [i, j] = k.split('.').map(Number);
        expect(c[i].samples[j].judgment.pYes).toBeCloseTo(1 - perfect[i].samples[j].judgment.pYes);
        expect(c[i].samples[j].external).toBe(perfect[i].samples[j].external); // the verdict is carried
      }
    }
  });

  it('fixed seed: exact counts on a round with model errors; the errors stay, the rest flips toward anti-verdict', () => {
    // Seed 7, round 1, share 0.5: 6 of the 12 samples with a verdict are chosen; 4 of them agreed with
    // their verdict (they flip), 2 are the model's own errors (a.1, c.0: already anti-verdict, unchanged).
    const c = corruptJudgments(round, 0.5, 7, 1, 'adversarial');
    const ch = changed(c);
    expect(ch.length).toBe(4);
    expect(antiVerdict(c).length).toBe(2 + 4);
    for (const k of ch) {
      const [i, j] = k.split('.').map(Number);
      const o = round[i].samples[j];
      expect(o.judgment.accept).toBe(o.external); // only agreeing judgments change
      expect(c[i].samples[j].judgment).toEqual({ pYes: 1 - o.judgment.pYes, accept: !o.external });
    }
    // untouched: everything not changed, pYes included; the sample without a verdict; the images
    c.forEach((d, i) =>
      d.samples.forEach((s, j) => {
        if (!ch.includes(key(i, j))) expect(s.judgment).toEqual(round[i].samples[j].judgment);
        expect(s.image).toBe(round[i].samples[j].image);
      }),
    );
    // deterministic by (seed, round); the input is not modified
    expect(changed(corruptJudgments(round, 0.5, 7, 1, 'adversarial'))).toEqual(ch);
    expect(round[0].samples[0].judgment).toEqual({ pYes: 0.9, accept: true });
    const others = [
      [8, 1],
      [9, 1],
      [7, 2],
      [7, 3],
    ].map(([seed, r]) => changed(corruptJudgments(round, 0.5, seed, r, 'adversarial')));
    expect(others.some((o) => JSON.stringify(o) !== JSON.stringify(ch))).toBe(true);
  });

  it('share 1: every label is the opposite of its verdict; SFT trains on exactly the wrong images', () => {
    const c = corruptJudgments(round, 1, 7, 0, 'adversarial');
    expect(antiVerdict(c).length).toBe(withVerdict);
    expect(changed(c).length).toBe(withVerdict - 2); // all but the model's own two errors
    expect(c[4].samples[0].judgment).toEqual(round[4].samples[0].judgment); // no verdict: untouched
    const wrong = round.flatMap((d) => d.samples.filter((s) => s.external === false).map((s) => s.image.tokens));
    expect(buildSftSet(c).map((e) => e.tokens)).toEqual(wrong); // 7 images, every one wrong
    expect(wrong.length).toBe(7);
  });

  it('share 1, DPO: every pair is a wrong image chosen over a right one, by the relabelled confidence', () => {
    const c = corruptJudgments(round, 1, 7, 0, 'adversarial');
    const verdict = new Map(round.flatMap((d) => d.samples.map((s) => [s.image.tokens, s.external])));
    const pairs = buildDpoPairs(c);
    expect(pairs.map((p) => p.prompt.id)).toEqual(['a', 'b', 'c', 'd']); // e has no accepted sample
    for (const p of pairs) {
      expect(verdict.get(p.chosen)).toBe(false);
      expect(verdict.get(p.rejected)).toBe(true);
    }
    // a: chosen among the wrong a.1 (0.8, kept), a.2 (0.2 → 0.8), a.3 (0.1 → 0.9): a.3; rejected: a.0 (0.9 → 0.1)
    expect(pairs[0].chosen).toBe(round[0].samples[3].image.tokens);
    expect(pairs[0].rejected).toBe(round[0].samples[0].image.tokens);
    expect(pairs[0].chosenPYes).toBeCloseTo(0.9);
    expect(pairs[0].rejectedPYes).toBeCloseTo(0.1);
    expect(buildDpoPairs(c, 'all').length).toBe(3 * 1 + 1 * 2 + 2 * 1 + 1 * 1); // wrong x right per prompt
  });

  it('reaches the curriculum: sft freezes exactly the wrong images, clo relabels the pool', () => {
    const cfg = (over: Partial<LoopConfig>) => ({ ...DEFAULT_LOOP_CONFIG, guard: false, ...over }) as LoopConfig;
    const sft = initPool(cfg({ strategy: 'sft', corrupt: 1, corruptMode: 'adversarial' }), round);
    expect(sft.frozen.map((d) => d.prompt.id)).toEqual(['a', 'b', 'c', 'd']);
    expect(sft.discard).toEqual(['e']);
    const c = cfg({ strategy: 'clo', cloStartFraction: 1, corrupt: 1, corruptMode: 'adversarial' });
    const r = roundData(c, initPool(c, round), 1, round);
    const samples = r.data.flatMap((d) => d.samples).filter((s) => s.external !== undefined);
    expect(samples.length).toBe(withVerdict);
    expect(samples.every((s) => s.judgment.accept === !s.external)).toBe(true);
  });
});

describe('curricula', () => {
  const cfg = (over: Partial<LoopConfig>) => ({ ...DEFAULT_LOOP_CONFIG, guard: false, ...over }) as LoopConfig;

  it("corruptMode 'accept' reaches the curriculum: sft freezes the false positives, clo corrupts the pool's samples", () => {
    const sft = initPool(cfg({ strategy: 'sft', corrupt: 1, corruptMode: 'accept' }), data);
    expect(sft.frozen.map((d) => d.prompt.id)).toEqual(['a', 'b', 'c', 'd']);
    expect(sft.discard).toEqual([]);
    expect(sft.frozen.every((d) => d.samples.every((s) => s.judgment.accept))).toBe(true);
    const flip = initPool(cfg({ strategy: 'sft', corrupt: 1 }), data);
    expect(flip.frozen.map((d) => d.prompt.id)).toEqual(['a', 'b', 'c']); // d's only sample flipped to rejected
    const c = cfg({ strategy: 'clo', cloStartFraction: 1, corrupt: 1, corruptMode: 'accept' });
    const r = roundData(c, initPool(c, data), 1, data);
    expect(r.data.flatMap((d) => d.samples).every((s) => s.judgment.accept)).toBe(true);
  });

  it('sft/dpo: data frozen from round 0, discard pool fixed', () => {
    const c = cfg({ strategy: 'sft' });
    const pool = initPool(c, data);
    expect(pool.frozen.map((d) => d.prompt.id)).toEqual(['a', 'b', 'd']);
    expect(pool.discard).toEqual(['c']);
    const later = [...data.slice(0, 2), ps('c', 'shape', [[0.9, true]]), data[3]];
    const r = roundData(c, pool, 3, later);
    expect(r.data.map((d) => d.prompt.id)).toEqual(['a', 'b', 'd']);
    expect(r.pool.discard).toEqual(['c']);
  });

  it('c-sft: from the trigger round, discard prompts that now pass join training', () => {
    const c = cfg({ strategy: 'c-sft', triggerRound: 2 });
    const pool = initPool(c, data);
    const later = [
      ...data.slice(0, 2),
      ps('c', 'shape', [
        [0.3, false],
        [0.8, true],
      ]),
      data[3],
    ];
    const before = roundData(c, pool, 1, later);
    expect(before.joined).toEqual([]);
    expect(before.pool.discard).toEqual(['c']);
    const after = roundData(c, pool, 2, later);
    expect(after.joined).toEqual(['c']);
    expect(after.pool.discard).toEqual([]);
    expect(after.data.map((d) => d.prompt.id)).toEqual(['a', 'b', 'd', 'c']);
    // the joined prompt trains on its fresh samples
    expect(buildSftSet(after.data).filter((e) => e.prompt.id === 'c').length).toBe(1);
  });

  it('clo: starts with the easiest fraction, expands when the pool pass rate crosses the threshold', () => {
    // pass rates: d 1, a 0.5, b 0.5, c 0
    expect(rankByPassRate(data)).toEqual(['d', 'a', 'b', 'c']);
    const c = cfg({ strategy: 'clo', cloStartFraction: 0.25, cloThreshold: 0.75, cloGrowth: 0.5 });
    const pool = initPool(c, data);
    expect(pool.active).toEqual(['d']);
    // pool pass rate 1 >= 0.75: admit ceil(0.5*4) = 2 more, easiest first by current pass rate
    const r1 = roundData(c, pool, 1, data);
    expect(r1.joined).toEqual(['a', 'b']);
    expect(r1.data.map((d) => d.prompt.id)).toEqual(['d', 'a', 'b']);
    // pool {d,a,b}: 1+2+1 of 1+4+2 accepted = 4/7 < 0.75: no expansion
    const r2 = roundData(c, r1.pool, 2, data);
    expect(r2.joined).toEqual([]);
    expect(r2.pool.active).toEqual(['d', 'a', 'b']);
    // online: the round trains on the fresh samples it is given
    const fresh = data.map((d) => (d.prompt.id === 'a' ? ps('a', 'color', [[0.99, true]]) : d));
    expect(buildSftSet(roundData(c, r1.pool, 2, fresh).data).filter((e) => e.prompt.id === 'a').length).toBe(1);
  });
});
