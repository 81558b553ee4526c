/**
 * The external validator: the embedded world's analog of T2I-CompBench++'s UniDet / BLIP-VQA judges.
 * It parses an image's tokens back into objects (the "detector") and decides exactly whether the
 * scene satisfies the prompt. It is the loop's ExternalJudge: evaluation and the guard only, it never
 * trains the model.
 */
import type { ExternalJudge, GeneratedImage, Prompt } from '../loop/types.js';
import { parsePrompt, type Constraint, type ObjectDesc } from './prompts.js';
import { tokensToScene, type SceneObject } from './scene.js';

function matches(o: SceneObject, d: ObjectDesc): boolean {
  return (d.color === undefined || o.color === d.color) && (d.shape === undefined || o.shape === d.shape);
}

/** Whether a scene satisfies one constraint. */
export function satisfiesConstraint(scene: readonly SceneObject[], c: Constraint): boolean {
  if (c.kind === 'has') return scene.some((o) => matches(o, c.desc));
  if (c.kind === 'count') return scene.filter((o) => matches(o, c.desc)).length === c.count;
  for (const a of scene) {
    if (!matches(a, c.a)) continue;
    for (const b of scene) {
      if (a === b || !matches(b, c.b)) continue;
      const ok =
        c.rel === 'left of'
          ? a.col < b.col
          : c.rel === 'right of'
            ? a.col > b.col
            : c.rel === 'above'
              ? a.row < b.row
              : a.row > b.row;
      if (ok) return true;
    }
  }
  return false;
}

/** Whether a scene satisfies every constraint. */
export function satisfies(scene: readonly SceneObject[], constraints: readonly Constraint[]): boolean {
  return constraints.every((c) => satisfiesConstraint(scene, c));
}

/** The world's ExternalJudge: exact verification of (prompt, image). Malformed images fail. */
export class SceneValidator implements ExternalJudge {
  readonly name = 'scene-validator';
  private readonly parsed = new Map<string, Constraint[]>();

  constraints(text: string): Constraint[] {
    let c = this.parsed.get(text);
    if (!c) {
      c = parsePrompt(text);
      this.parsed.set(text, c);
    }
    return c;
  }

  verify(prompt: Prompt, image: GeneratedImage): boolean {
    let scene: SceneObject[];
    try {
      scene = tokensToScene(image.tokens);
    } catch {
      return false;
    }
    return satisfies(scene, this.constraints(prompt.text));
  }
}
