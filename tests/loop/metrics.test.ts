import { describe, expect, it } from 'vitest';

import { acceptRate, externalMetrics, nonunifiedScore, passRates, rate, wilson } from '../../lib/loop/metrics.js';
import { ps } from './fixtures.js';

// Hand-computed case: 3 prompts, 8 samples.
//   a (color): acc/right, acc/wrong, rej/wrong
//   b (color): rej/right, rej/wrong, acc/right
//   c (shape): rej/wrong, rej/wrong
// accepted 3 (2 right, 1 wrong) ; rejected 5 (1 right, 4 wrong) ; right 3 of 8.
const data = [
  ps('a', 'color', [
    [0.9, true, true],
    [0.7, true, false],
    [0.2, false, false],
  ]),
  ps('b', 'color', [
    [0.4, false, true],
    [0.1, false, false],
    [0.8, true, true],
  ]),
  ps('c', 'shape', [
    [0.3, false, false],
    [0.05, false, false],
  ]),
];

describe('metrics', () => {
  it('rate and the 0/0 convention', () => {
    expect(rate(1, 4)).toEqual({ value: 0.25, count: 1, total: 4 });
    expect(rate(0, 0)).toEqual({ value: 0, count: 0, total: 0 });
  });

  it('nonunifiedScore overall and per category', () => {
    const nu = nonunifiedScore(data);
    expect(nu).toMatchObject({ count: 5, total: 8, value: 5 / 8 });
    expect(nu.perCategory.color).toEqual({ value: 3 / 6, count: 3, total: 6 });
    expect(nu.perCategory.shape).toEqual({ value: 1, count: 2, total: 2 });
    expect(acceptRate(data)).toEqual({ value: 3 / 8, count: 3, total: 8 });
  });

  it('external metrics: accuracy, agreement, false positives, blame split', () => {
    const e = externalMetrics(data);
    expect(e.generationAccuracy).toEqual({ value: 3 / 8, count: 3, total: 8 });
    // agree: a0 (acc,right) a2 (rej,wrong) b1 (rej,wrong) b2 (acc,right) c0 c1 -> 6 of 8
    expect(e.understandingAccuracy).toEqual({ value: 6 / 8, count: 6, total: 8 });
    expect(e.falsePositiveRate).toEqual({ value: 1 / 3, count: 1, total: 3 });
    expect(e.blame.weakGeneration).toEqual({ value: 4 / 5, count: 4, total: 5 });
    expect(e.blame.weakUnderstanding).toEqual({ value: 1 / 5, count: 1, total: 5 });
  });

  it('external metrics refuse samples without a verdict', () => {
    expect(() => externalMetrics([ps('x', 'c', [[0.5, true]])])).toThrow(/no external verdict/);
  });

  it('pass rates per prompt', () => {
    const r = passRates(data);
    expect(r.get('a')).toBeCloseTo(2 / 3);
    expect(r.get('b')).toBeCloseTo(1 / 3);
    expect(r.get('c')).toBe(0);
  });

  it('Wilson interval against hand-computed values', () => {
    // p = 0.5, n = 10, z = 1.96: centre 0.5, half = 1.96*sqrt(0.025 + 0.009604)/1.38416 = 0.26340
    const w = wilson({ count: 5, total: 10 });
    expect(w.low).toBeCloseTo(0.2366, 4);
    expect(w.high).toBeCloseTo(0.7634, 4);
    // p = 0: low 0, high = z^2/n / (1 + z^2/n) = 0.38416/1.38416 = 0.27754
    const z = wilson({ count: 0, total: 10 });
    expect(z.low).toBe(0);
    expect(z.high).toBeCloseTo(0.2775, 4);
    expect(wilson({ count: 0, total: 0 })).toEqual({ low: 0, high: 1 });
  });
});
