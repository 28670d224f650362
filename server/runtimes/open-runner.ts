/**
 * The runner for a RuntimeId: ORT's EPs, the TypeScript reference, a TF.js backend, or the user's PyTorch.
 */
import type { DeviceReport } from '../../protocol/devices';
import type { RuntimeId } from '../../protocol/results';
import { ortChildRunner } from './ort/child-runner';
import { ortRunner } from './ort/runner';
import { referenceRunner } from './reference-runner';
import type { Runner } from './runner';
import { tfjsRunner } from './tfjs/runner';
import { torchRunner } from './torch/runner';

/** Opens a runtime, or throws an Error whose message says why it is not usable here. */
export async function openRunner(id: RuntimeId, report: DeviceReport): Promise<Runner> {
  switch (id) {
    case 'ort-cpu':
      return ortRunner('cpu', report);
    case 'ort-webgpu':
      return ortRunner('webgpu', report);
    case 'ort-cuda':
      return ortChildRunner('cuda', report);
    case 'reference':
      return referenceRunner(report);
    case 'torch-cpu':
    case 'torch-cuda':
    case 'torch-mps':
    case 'torch-cpu-compiled':
    case 'torch-cuda-compiled':
      return torchRunner(id, report);
    default:
      return tfjsRunner(id, report);
  }
}
