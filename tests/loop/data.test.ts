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
