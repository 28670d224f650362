/**
 * A graph prepared in a runtime's own process (the user's Python, the onnxruntime host), as the
 * harness sees it: both speak the same requests on a prepared handle — `run` (inputs in, outputs
 * back), `bind` (inputs kept there for `time`), `time` (one run timed inside the process) and
 * `release` — so that conversation is written once here.
 */
import type { PreparedGraph } from '../runner';
import type { ChildChannel } from './channel';
import { float32Of } from './frames';

/** Input specs for the request header and the float32 blobs that follow it. */
export type EncodeInputs = (inputs: Record<string, Float32Array>) => { specs: object[]; blobs: Float32Array[] };

export interface ChildPreparedGraph extends Required<Pick<PreparedGraph, 'run' | 'timedRun' | 'release'>> {
  /** Sends the inputs once; later calls with the same object send nothing. */
  bind(inputs: Record<string, Float32Array>): Promise<void>;
}

export function childPreparedGraph(channel: ChildChannel, handle: number, encode: EncodeInputs): ChildPreparedGraph {
  let bound: Record<string, Float32Array> | null = null;
  const bind = async (inputs: Record<string, Float32Array>) => {
    if (bound === inputs) return;
    const { specs, blobs } = encode(inputs);
    await channel.request({ cmd: 'bind', handle, inputs: specs }, blobs);
    bound = inputs;
  };
  return {
    bind,
    async run(inputs) {
      const { specs, blobs } = encode(inputs);
      const answer = await channel.request({ cmd: 'run', handle, inputs: specs }, blobs);
      const shapes = answer.header.outputs as { shape: number[] }[];
      return answer.blobs.map((b, i) => ({ shape: shapes[i]!.shape, data: float32Of(b) }));
    },
    async timedRun(inputs) {
      await bind(inputs);
      return (await channel.request({ cmd: 'time', handle })).header.ms as number;
    },
    async release() {
      // A process that died took its tensors with it; its error is what the case reports.
      if (channel.ended) return;
      await channel.request({ cmd: 'release', handle });
    },
  };
}
