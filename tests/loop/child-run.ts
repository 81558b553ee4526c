/**
 * Child process for the kill -9 test: runs (or resumes) the loop on the toy model with a slowed-down
 * optimizer step, so the parent can SIGKILL it at a random moment. argv: runDir, JSON config, resume.
 */
import { runSelfImprovement } from '../../lib/index.js';
import type { LoopConfig } from '../../lib/index.js';
import { ToyModel, toyJudge, toyPrompts } from './toy.js';

class SlowToy extends ToyModel {
  override async step(grad: Float32Array, o: { learningRate: number }): Promise<void> {
    await new Promise((r) => setTimeout(r, 3));
    super.step(grad, o);
  }
}

const [runDir, config, resume] = process.argv.slice(2);
const { train, probe } = toyPrompts({ slots: 2, values: 8 });
await runSelfImprovement({
  model: new SlowToy(),
  judge: toyJudge,
  trainPrompts: train,
  probePrompts: probe,
  config: JSON.parse(config) as Partial<LoopConfig>,
  runDir,
  resume: resume === 'resume',
});
process.stdout.write('done\n');
