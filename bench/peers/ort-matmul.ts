/**
 * onnxruntime-node peer for the similarity matrix: a one-node ONNX graph S = A · Bᵀ (MatMul on a
 * pre-transposed B, the layout MatMul wants), built in memory with onnx-proto. Loaded from
 * bench/peers/node_modules, never from unigap's own dependencies.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(new URL('./package.json', import.meta.url));

interface OrtTensorCtor {
  new (type: 'float32', data: Float32Array, dims: number[]): unknown;
}
interface OrtSession {
  run(feeds: Record<string, unknown>): Promise<Record<string, { data: Float32Array }>>;
}
interface OrtModule {
  Tensor: OrtTensorCtor;
  InferenceSession: { create(model: Uint8Array, opts: Record<string, unknown>): Promise<OrtSession> };
  env: { versions?: Record<string, string> };
}

export function ortVersion(): string {
  return (require('onnxruntime-node/package.json') as { version: string }).version;
}

function valueInfo(name: string, dims: number[]) {
  return {
    name,
    type: { tensorType: { elemType: 1, shape: { dim: dims.map((v) => ({ dimValue: v })) } } },
  };
}

/** A session computing A[n, d] · BT[d, m] with `threads` intra-op threads. */
export async function ortMatmul(n: number, m: number, d: number, threads = 2) {
  const { onnx } = require('onnx-proto') as {
    onnx: {
      ModelProto: {
        create(p: unknown): unknown;
        encode(m: unknown): { finish(): Uint8Array };
      };
    };
  };
  const model = onnx.ModelProto.create({
    irVersion: 8,
    producerName: 'unigap-bench',
    opsetImport: [{ domain: '', version: 17 }],
    graph: {
      name: 'similarity_matmul',
      node: [{ opType: 'MatMul', input: ['A', 'BT'], output: ['S'], name: 'mm' }],
      input: [valueInfo('A', [n, d]), valueInfo('BT', [d, m])],
      output: [valueInfo('S', [n, m])],
    },
  });
  const bytes = onnx.ModelProto.encode(model).finish();
  const ort = require('onnxruntime-node') as OrtModule;
  const session = await ort.InferenceSession.create(bytes, {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  });
  return (a: Float32Array, bt: Float32Array) =>
    session.run({ A: new ort.Tensor('float32', a, [n, d]), BT: new ort.Tensor('float32', bt, [d, m]) });
}

/** simsimd (one pair per call), or undefined when it does not load. */
export function loadSimsimd(): { cosine(a: Float32Array, b: Float32Array): number; version: string } | undefined {
  try {
    const s = require('simsimd') as { cosine(a: Float32Array, b: Float32Array): number };
    // simsimd's exports map hides package.json from require(): read it from disk.
    const pkg = new URL('./node_modules/simsimd/package.json', import.meta.url);
    const version = (JSON.parse(readFileSync(pkg, 'utf8')) as { version: string }).version;
    return { cosine: s.cosine, version };
  } catch {
    return undefined;
  }
}
