import { describe, expect, it } from 'vitest';

import { parsePrompt, promptText, semanticKey } from '../../lib/world/prompts.js';
import { sampleNearMiss, sampleScene } from '../../lib/world/sampler.js';
import {
  decodeToken,
  makeRng,
  objectToken,
  sceneToTokens,
  tokensToScene,
  type SceneObject,
} from '../../lib/world/scene.js';
import { SceneValidator, satisfies } from '../../lib/world/validator.js';

const v = new SceneValidator();
const o = (row: number, col: number, color: SceneObject['color'], shape: SceneObject['shape']): SceneObject => ({
  row,
  col,
  color,
  shape,
});
const check = (text: string, category: string, scene: SceneObject[]) =>
  v.verify({ id: 'x', text, category }, { tokens: sceneToTokens(scene) });

describe('scene tokens', () => {
  it('round-trips scenes and tokens', () => {
    const scene = [o(0, 0, 'red', 'circle'), o(3, 2, 'purple', 'star')];
    const tokens = sceneToTokens(scene);
    expect(tokens[0]).toBe(objectToken('red', 'circle'));
    expect(tokensToScene(tokens)).toEqual(scene);
    expect(decodeToken(0)).toBeNull();
    expect(() => decodeToken(21)).toThrow(RangeError);
  });
  it('rejects malformed images', () => {
    expect(v.verify({ id: 'x', text: 'a red circle', category: 'single' }, { tokens: new Int32Array(15) })).toBe(false);
    const bad = sceneToTokens([o(0, 0, 'red', 'circle')]);
    bad[5] = 99;
    expect(v.verify({ id: 'x', text: 'a red circle', category: 'single' }, { tokens: bad })).toBe(false);
  });
});

describe('validator is exact on constructed scenes', () => {
  it('color binding', () => {
    const t = 'a red circle and a blue square';
    expect(check(t, 'color', [o(0, 0, 'red', 'circle'), o(2, 3, 'blue', 'square')])).toBe(true);
    expect(check(t, 'color', [o(0, 0, 'red', 'circle'), o(2, 3, 'blue', 'square'), o(1, 1, 'green', 'star')])).toBe(
      true,
    );
    // Colors swapped between the shapes: every attribute is present but the binding is wrong.
    expect(check(t, 'color', [o(0, 0, 'blue', 'circle'), o(2, 3, 'red', 'square')])).toBe(false);
    expect(check(t, 'color', [o(0, 0, 'red', 'circle')])).toBe(false);
    expect(check(t, 'color', [])).toBe(false);
  });
  it('shape binding', () => {
    const t = 'a green triangle and a green star';
    expect(check(t, 'shape', [o(1, 1, 'green', 'star'), o(3, 0, 'green', 'triangle')])).toBe(true);
    expect(check(t, 'shape', [o(1, 1, 'green', 'star'), o(3, 0, 'green', 'circle')])).toBe(false);
    expect(check(t, 'shape', [o(1, 1, 'green', 'star'), o(3, 0, 'red', 'triangle')])).toBe(false);
  });
  it('spatial relations, all four', () => {
    const a = o(2, 0, 'red', 'circle');
    const b = o(0, 3, 'blue', 'square');
    const scene = [a, b];
    expect(check('a red circle left of a blue square', 'spatial', scene)).toBe(true);
    expect(check('a red circle right of a blue square', 'spatial', scene)).toBe(false);
    expect(check('a red circle below a blue square', 'spatial', scene)).toBe(true);
    expect(check('a red circle above a blue square', 'spatial', scene)).toBe(false);
    expect(check('a blue square right of a red circle', 'spatial', scene)).toBe(true);
    expect(check('a blue square above a red circle', 'spatial', scene)).toBe(true);
    // Same column: neither left nor right.
    const same = [o(0, 1, 'red', 'circle'), o(3, 1, 'blue', 'square')];
    expect(check('a red circle left of a blue square', 'spatial', same)).toBe(false);
    expect(check('a red circle right of a blue square', 'spatial', same)).toBe(false);
    // The relation needs two distinct objects.
    expect(check('a red circle left of a red circle', 'spatial', [o(0, 0, 'red', 'circle')])).toBe(false);
    // Any matching pair suffices.
    expect(check('a red circle left of a blue square', 'spatial', [...same, o(2, 3, 'blue', 'square')])).toBe(true);
  });
  it('counting is exact', () => {
    const two = [o(0, 0, 'yellow', 'star'), o(1, 1, 'yellow', 'star'), o(2, 2, 'red', 'star')];
    expect(check('two yellow stars', 'counting', two)).toBe(true);
    expect(check('three stars', 'counting', two)).toBe(true);
    expect(check('two stars', 'counting', two)).toBe(false);
    expect(check('three yellow stars', 'counting', two)).toBe(false);
    expect(check('two yellow stars', 'counting', [...two, o(3, 3, 'yellow', 'star')])).toBe(false);
  });
  it('complex: both constraints at once', () => {
    const t = 'a red circle above a blue square and two green stars';
    const base = [o(0, 0, 'red', 'circle'), o(1, 0, 'blue', 'square'), o(3, 3, 'green', 'star')];
    expect(check(t, 'complex', [...base, o(3, 2, 'green', 'star')])).toBe(true);
    expect(check(t, 'complex', base)).toBe(false);
    expect(
      check(t, 'complex', [
        o(2, 0, 'red', 'circle'),
        o(1, 0, 'blue', 'square'),
        o(3, 3, 'green', 'star'),
        o(3, 2, 'green', 'star'),
      ]),
    ).toBe(false);
  });
});

describe('prompt grammar', () => {
  it('parses what it prints', () => {
    for (const t of [
      'a red circle and a blue square',
      'a red circle left of a blue square and two green stars',
      'three stars',
    ]) {
      expect(promptText(parsePrompt(t))).toBe(t);
    }
    expect(() => parsePrompt('a red banana')).toThrow(SyntaxError);
    expect(() => parsePrompt('five circles')).toThrow(SyntaxError);
  });
  it('semantic keys identify equivalent prompts', () => {
    expect(semanticKey('a red circle left of a blue square')).toBe(semanticKey('a blue square right of a red circle'));
    expect(semanticKey('a red circle and a blue square')).toBe(semanticKey('a blue square and a red circle'));
    expect(semanticKey('a red circle left of a blue square')).not.toBe(
      semanticKey('a red circle right of a blue square'),
    );
  });
});

describe('samplers agree with the validator', () => {
  it('satisfying scenes pass, near misses fail', () => {
    const rng = makeRng(3);
    for (const t of [
      'a red circle and a blue square',
      'a red circle below a blue square',
      'three green stars',
      'a red circle above a blue square and two green stars',
    ]) {
      const cons = parsePrompt(t);
      for (let i = 0; i < 20; i++) {
        expect(satisfies(sampleScene(cons, rng), cons)).toBe(true);
        expect(satisfies(sampleNearMiss(cons, rng), cons)).toBe(false);
      }
    }
  });
});
