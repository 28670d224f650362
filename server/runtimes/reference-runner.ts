/**
 * The TypeScript reference interpreter as a Runner: float32, one thread, no memory figures.
 * It is what every other runtime's outputs are compared against.
 */
import type { DeviceReport } from '../../protocol/devices';
import { ReferenceRuntime } from '../core/engine/lowerings/reference';
import { cpuLabel } from './labels';
import type { Runner } from './runner';

export function referenceRunner(report: DeviceReport): Runner {
  const rt = new ReferenceRuntime('float32');
  return {
    description: {
      id: 'reference',
      runtime: 'ViT Lens TypeScript reference (float32, single thread)',
      device: cpuLabel(report, 1),
      software: false,
      maxBufferBytes: null,
      tokenTileBytes: null,
    },
    async prepare(graph, outputs, weights) {
      return {
        run: async (inputs) =>
          rt.run(graph, inputs, weights, outputs).map((t) => ({ shape: [...t.shape], data: t.data })),
        measureMemory: async () => [],
        release: async () => {},
      };
    },
    close: async () => {},
  };
}
