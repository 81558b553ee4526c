/**
 * onnxruntime-node peer for the logprobs bench: a LogSoftmax(axis = -1) + GatherElements(axis = 1)
 * graph built in code with onnx-proto (opset 13), run on the CPU execution provider with the given
 * intra-op thread count. Loaded from bench/peers/node_modules (never a dependency of unigap itself).
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const peers = createRequire(join(dirname(fileURLToPath(import.meta.url)), 'package.json'));

interface OrtTensor {
  data: Float32Array;
}
interface OrtSession {
  run(feeds: Record<string, unknown>): Promise<Record<string, OrtTensor>>;
  release?(): Promise<void>;
}
/** The part of onnx-proto used here (typed locally: bench/peers is not installed by `npm ci`). */
interface OnnxProto {
  onnx: {
    TensorProto: { DataType: { FLOAT: number; INT64: number } };
    AttributeProto: { AttributeType: { INT: number } };
    ModelProto: { create(m: unknown): unknown; encode(m: unknown): { finish(): Uint8Array } };
  };
}
interface Ort {
  InferenceSession: { create(model: Uint8Array, options: Record<string, unknown>): Promise<OrtSession> };
  Tensor: new (type: string, data: unknown, dims: readonly number[]) => unknown;
  env: { versions?: { common?: string } };
}

/** The ModelProto bytes: logp[n, 0] = log_softmax(logits[n, :])[labels[n, 0]]. */
export function logprobsModel(n: number, v: number): Uint8Array {
  const { onnx } = peers('onnx-proto') as OnnxProto;
  const T = onnx.TensorProto.DataType;
  const dim = (d: number) => ({ dimValue: d });
  const io = (name: string, elemType: number, dims: number[]) => ({
    name,
    type: { tensorType: { elemType, shape: { dim: dims.map(dim) } } },
  });
  const model = onnx.ModelProto.create({
    irVersion: 7,
    producerName: 'unigap-bench',
    opsetImport: [{ domain: '', version: 13 }],
    graph: {
      name: 'logprobs',
      node: [
        {
          opType: 'LogSoftmax',
          input: ['logits'],
          output: ['lsm'],
          attribute: [{ name: 'axis', type: onnx.AttributeProto.AttributeType.INT, i: -1 }],
        },
        {
          opType: 'GatherElements',
          input: ['lsm', 'labels'],
          output: ['logp'],
          attribute: [{ name: 'axis', type: onnx.AttributeProto.AttributeType.INT, i: 1 }],
        },
      ],
      input: [io('logits', T.FLOAT, [n, v]), io('labels', T.INT64, [n, 1])],
      output: [io('logp', T.FLOAT, [n, 1])],
    },
  });
  return onnx.ModelProto.encode(model).finish();
}

export interface OrtLogprobs {
  version: string;
  /** Per-row log-probs of `labels` (N) under `logits` (N * V, f32). */
  run(logits: Float32Array, labels: BigInt64Array): Promise<Float32Array>;
  release(): Promise<void>;
}

export async function createOrtLogprobs(n: number, v: number, threads: number): Promise<OrtLogprobs> {
  const ort = peers('onnxruntime-node') as Ort;
  const version = (peers('onnxruntime-node/package.json') as { version: string }).version;
  const session = await ort.InferenceSession.create(logprobsModel(n, v), {
    executionProviders: ['cpu'],
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  });
  return {
    version,
    async run(logits, labels) {
      const out = await session.run({
        logits: new ort.Tensor('float32', logits, [n, v]),
        labels: new ort.Tensor('int64', labels, [n, 1]),
      });
      return out.logp.data;
    },
    async release() {
      await session.release?.();
    },
  };
}
