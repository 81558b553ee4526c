/**
 * Plain float64 oracle of the DPO loss family, written from TRL's DPOTrainer formulas (v1
 * `_compute_loss`, `sigmoid_norm`, the 0.x cDPO sigmoid and bco_pair delta) as literally as float64
 * allows: it computes what TRL computes, in the same order, with no rewriting for stability beyond
 * torch's own (F.logsigmoid and F.softplus are stable). Tests and benches only; no gradients (the tests
 * take finite differences of this).
 */

export type RefLossType =
  | 'sigmoid'
  | 'hinge'
  | 'ipo'
  | 'exo_pair'
  | 'nca_pair'
  | 'robust'
  | 'bco_pair'
  | 'sppo_hard'
  | 'aot'
  | 'aot_unpaired'
  | 'apo_zero'
  | 'apo_down'
  | 'discopop'
  | 'sigmoid_norm'
  | 'sft';

export interface RefDpoInputs {
  policyChosen: ArrayLike<number>;
  policyRejected: ArrayLike<number>;
  /** undefined = reference-free (0). */
  referenceChosen?: ArrayLike<number>;
  referenceRejected?: ArrayLike<number>;
  chosenTokens?: ArrayLike<number>;
  rejectedTokens?: ArrayLike<number>;
}

export interface RefDpoOptions {
  beta: number;
  lossTypes: RefLossType[];
  lossWeights?: number[];
  labelSmoothing?: number;
  discopopTau?: number;
  fDivergence?: 'reverse_kl' | 'forward_kl' | 'js' | 'alpha';
  alpha?: number;
  bcoDelta?: number;
  weights?: ArrayLike<number>;
}

export interface RefDpoResult {
  loss: number;
  losses: Float64Array;
  chosenRewards: Float64Array;
  rejectedRewards: Float64Array;
  margins: Float64Array;
  rewardAccuracy: number;
}

const softplus = (x: number) => (x > 0 ? x + Math.log1p(Math.exp(-x)) : Math.log1p(Math.exp(x)));
const logsigmoid = (x: number) => -softplus(-x);
const sigmoid = (x: number) => (x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x)));
const sortAsc = (a: number[]) => [...a].sort((x, y) => x - y);

export function dpoLossReference(inputs: RefDpoInputs, o: RefDpoOptions): RefDpoResult {
  const B = inputs.policyChosen.length;
  const beta = o.beta;
  const ls = o.labelSmoothing ?? 0;
  const tau = o.discopopTau ?? 0.05;
  const pc = Array.from(inputs.policyChosen);
  const pr = Array.from(inputs.policyRejected);
  const qc = inputs.referenceChosen ? Array.from(inputs.referenceChosen) : new Array<number>(B).fill(0);
  const qr = inputs.referenceRejected ? Array.from(inputs.referenceRejected) : new Array<number>(B).fill(0);
  const chosenLogratios = pc.map((v, i) => v - qc[i]);
  const rejectedLogratios = pr.map((v, i) => v - qr[i]);

  let f: (l: number) => number = (l) => l;
  const fd = o.fDivergence ?? 'reverse_kl';
  if (fd === 'forward_kl') f = (l) => -Math.exp(-l);
  else if (fd === 'js') f = (l) => logsigmoid(l);
  else if (fd === 'alpha') {
    const a = o.alpha ?? 1.0;
    if (Math.abs(a - 1.0) >= 1e-6) {
      const coef = 1.0 / (a - 1.0);
      f = (l) => Math.exp(Math.min((a - 1.0) * l, 80.0)) * coef;
    }
  }
  const cs = chosenLogratios.map(f);
  const rs = rejectedLogratios.map(f);
  const delta = cs.map((v, i) => v - rs[i]);
  const nc = (i: number) => Math.max(1, inputs.chosenTokens![i]);
  const nr = (i: number) => Math.max(1, inputs.rejectedTokens![i]);

  const total = new Float64Array(B);
  const lw = o.lossWeights ?? o.lossTypes.map(() => 1);
  o.lossTypes.forEach((t, k) => {
    let per: number[];
    switch (t) {
      case 'sigmoid':
        per = delta.map((d) => -logsigmoid(beta * d) * (1 - ls) - logsigmoid(-beta * d) * ls);
        break;
      case 'hinge':
        per = delta.map((d) => Math.max(0, 1 - beta * d));
        break;
      case 'ipo':
        per = cs.map((c, i) => (c / nc(i) - rs[i] / nr(i) - 1 / (2 * beta)) ** 2);
        break;
      case 'exo_pair': {
        const eps = ls === 0 ? 1e-3 : ls;
        per = delta.map((d) => {
          const qw = sigmoid(beta * d);
          const ql = sigmoid(-beta * d);
          return qw * (logsigmoid(beta * d) - Math.log1p(-eps)) + ql * (logsigmoid(-beta * d) - Math.log(eps));
        });
        break;
      }
      case 'nca_pair':
        per = cs.map((c, i) => {
          const cr = beta * c;
          const rr = beta * rs[i];
          return -logsigmoid(cr) - 0.5 * logsigmoid(-cr) - 0.5 * logsigmoid(-rr);
        });
        break;
      case 'robust':
        per = delta.map((d) => (-(1 - ls) * logsigmoid(beta * d) - -ls * logsigmoid(-beta * d)) / (1 - 2 * ls));
        break;
      case 'bco_pair': {
        const dl = o.bcoDelta ?? 0;
        per = cs.map((c, i) => -logsigmoid(beta * c - dl) - logsigmoid(-(beta * rs[i] - dl)));
        break;
      }
      case 'sppo_hard':
        per = cs.map((c, i) => (c - 0.5 / beta) ** 2 + (rs[i] + 0.5 / beta) ** 2);
        break;
      case 'aot': {
        const lr = sortAsc(pc.map((v, i) => v - pr[i]));
        const rr = sortAsc(qc.map((v, i) => v - qr[i]));
        per = lr.map((v, i) => {
          const d = v - rr[i];
          return -logsigmoid(beta * d) * (1 - ls) - logsigmoid(-beta * d) * ls;
        });
        break;
      }
      case 'aot_unpaired': {
        const c = sortAsc(chosenLogratios);
        const r = sortAsc(rejectedLogratios);
        per = c.map((v, i) => {
          const d = v - r[i];
          return -logsigmoid(beta * d) * (1 - ls) - logsigmoid(-beta * d) * ls;
        });
        break;
      }
      case 'apo_zero':
        per = chosenLogratios.map((c, i) => 1 - sigmoid(beta * c) + sigmoid(beta * rejectedLogratios[i]));
        break;
      case 'apo_down':
        per = chosenLogratios.map((c, i) => sigmoid(beta * c) + (1 - sigmoid(beta * delta[i])));
        break;
      case 'discopop':
        per = delta.map((d) => {
          const logits = d * beta;
          const mod = sigmoid(logits / tau);
          return -logsigmoid(logits) * (1 - mod) + Math.exp(-logits) * mod;
        });
        break;
      case 'sigmoid_norm':
        per = cs.map((c, i) => -logsigmoid(beta * (c / nc(i) - rs[i] / nr(i))));
        break;
      case 'sft': {
        let sum = 0;
        let n = 0;
        for (let i = 0; i < B; i++) {
          sum += pc[i];
          n += inputs.chosenTokens![i];
        }
        const s = -sum / Math.max(n, 1);
        per = new Array<number>(B).fill(s);
        break;
      }
    }
    for (let i = 0; i < B; i++) total[i] += lw[k] * (o.weights ? o.weights[i] : 1) * per[i];
  });
  let loss = 0;
  for (let i = 0; i < B; i++) loss += total[i];
  loss /= B;
  const chosenRewards = Float64Array.from(chosenLogratios, (v) => beta * v);
  const rejectedRewards = Float64Array.from(rejectedLogratios, (v) => beta * v);
  const margins = chosenRewards.map((v, i) => v - rejectedRewards[i]);
  let acc = 0;
  for (let i = 0; i < B; i++) acc += chosenRewards[i] > rejectedRewards[i] ? 1 : 0;
  return { loss, losses: total, chosenRewards, rejectedRewards, margins, rewardAccuracy: acc / B };
}
