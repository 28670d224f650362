/**
 * The runner for a RuntimeId: ORT's EPs, the TypeScript reference, or a TF.js backend.
 */
import type { DeviceReport } from '../../protocol/devices';
import type { RuntimeId } from '../../protocol/results';
import { ortRunner } from './ort/runner';
import { referenceRunner } from './reference-runner';
import type { Runner } from './runner';
import { tfjsRunner } from './tfjs/runner';

/** Opens a runtime, or throws an Error whose message says why it is not usable here. */
export async function openRunner(id: RuntimeId, report: DeviceReport): Promise<Runner> {
  switch (id) {
    case 'ort-cpu':
      return ortRunner('cpu', report);
    case 'ort-webgpu':
      return ortRunner('webgpu', report);
    case 'reference':
      return referenceRunner(report);
    default:
      return tfjsRunner(id, report);
  }
}
