import { describe, expect, it } from 'vitest';

import { UnknownOptionError, InvalidTypeError, InvalidValueError, ShapeMismatchError } from '../lib/index.js';
import { checkOptions, requireArray, requireShape, resolveFloatInput, requireNumber } from '../lib/validate.js';

describe('validate helpers', () => {
  it('names the closest option for a misspelling', () => {
    expect(() => checkOptions('f', { temprature: 1 }, ['temperature', 'shift'])).toThrow(
      /unknown option 'temprature' \(did you mean 'temperature'\?\)/,
    );
    try {
      checkOptions('f', { bogus: 1 }, ['temperature']);
    } catch (e) {
      expect(e).toBeInstanceOf(UnknownOptionError);
      expect((e as UnknownOptionError).code).toBe('ERR_UNIGAP_UNKNOWN_OPTION');
    }
  });

  it('rejects detached and SharedArrayBuffer-backed views with codes', () => {
    const a = new Float32Array(4);
    structuredClone(a.buffer, { transfer: [a.buffer] });
    expect(() => requireArray('f', 'x', a, [Float32Array])).toThrow(
      expect.objectContaining({ code: 'ERR_UNIGAP_DETACHED_BUFFER' }),
    );
    const s = new Float32Array(new SharedArrayBuffer(16));
    expect(() => requireArray('f', 'x', s, [Float32Array])).toThrow(InvalidTypeError);
    expect(requireArray('f', 'x', s, [Float32Array], { allowShared: true })).toBe(s);
    expect(requireArray<Float32Array>('f', 'x', new Float32Array(0), [Float32Array]).length).toBe(0);
    expect(() => requireArray('f', 'x', new Float64Array(2), [Float32Array])).toThrow(/must be Float32Array/);
  });

  it('checks shapes for integers and overflow', () => {
    expect(requireShape('f', 's', [2, 3])).toEqual([2, 3]);
    expect(() => requireShape('f', 's', [2, 1.5])).toThrow(InvalidValueError);
    expect(() => requireShape('f', 's', [-1])).toThrow(InvalidValueError);
    expect(() => requireShape('f', 's', [NaN])).toThrow(InvalidValueError);
    expect(() => requireShape('f', 's', [2 ** 30, 2 ** 30, 2 ** 30])).toThrow(/safe integer/);
    expect(() => requireShape('f', 's', [2, 3, 4], [2])).toThrow(ShapeMismatchError);
  });

  it('resolves dtypes and tensor-like inputs', () => {
    expect(resolveFloatInput('f', 'x', new Float32Array(2), undefined).dtype).toBe('f32');
    expect(resolveFloatInput('f', 'x', new Uint16Array(2), 'bf16').dtype).toBe('bf16');
    expect(() => resolveFloatInput('f', 'x', new Uint16Array(2), undefined)).toThrow(/pass dtype/);
    expect(() => resolveFloatInput('f', 'x', new Float64Array(2), undefined)).toThrow(InvalidTypeError);
    const t = resolveFloatInput('f', 'x', { type: 'float32', data: new Float32Array(6), dims: [2, 3] }, undefined);
    expect(t.dims).toEqual([2, 3]);
    expect(() => requireNumber('f', 'beta', 0, { min: 0, minExclusive: true })).toThrow(/> 0/);
    expect(() => requireNumber('f', 'beta', Infinity)).toThrow(/finite/);
  });
});
