/**
 * The command-line options of the commands that run a config's model on inputs (`infer`, `grad`):
 * the checkpoint, images or a raw tensor with its shape, the resolution and the resize. One parser,
 * so both commands accept and refuse the same things with the same messages; the files themselves
 * are read by the jobs' one input path (jobs/infer/run.ts loadModelInputs).
 */
import { configInputs } from '../inputs/locate';
import type { ModelInputJob } from '../jobs/infer/run';
import { intArg, UsageError } from './args';
import type { RunnableConfig } from './config';

/** parseArgs options for the model's inputs (spread into a command's own). */
export const MODEL_INPUT_OPTIONS = {
  checkpoint: { type: 'string' },
  'checkpoint-search-path': { type: 'string', multiple: true },
  image: { type: 'string', multiple: true },
  'input-tensor': { type: 'string' },
  shape: { type: 'string' },
  resolution: { type: 'string' },
  resize: { type: 'string' },
} as const;

export interface ModelInputValues {
  checkpoint?: string;
  'checkpoint-search-path'?: string[];
  image?: string[];
  'input-tensor'?: string;
  shape?: string;
  resolution?: string;
  resize?: string;
}

/** The flags checked that need no config: --resize, --image against --input-tensor, --shape. */
export function tensorShapeArg(values: ModelInputValues): [number, number, number, number] | undefined {
  if (values.resize && values.resize !== 'eval' && values.resize !== 'none')
    throw new UsageError(`--resize must be eval or none, got "${values.resize}".`);
  if (values['input-tensor'] && values.image) throw new UsageError('give --image or --input-tensor, not both.');
  if (!values['input-tensor']) return undefined;
  if (!values.shape) throw new UsageError('--input-tensor needs --shape B,C,H,W (float32 little-endian, NCHW).');
  const dims = values.shape.split(',').map((d) => intArg('shape', d.trim(), 1, 1 << 16));
  if (dims.length !== 4) throw new UsageError(`--shape needs 4 dimensions B,C,H,W, got ${dims.length}.`);
  return dims as [number, number, number, number];
}

/**
 * The job's input fields: paths in the config are relative to it, found the way the editor finds
 * them (one resolver); paths on the command line are relative to the working directory.
 */
export function modelInputJob(
  file: string,
  config: RunnableConfig,
  values: ModelInputValues,
  shape: [number, number, number, number] | undefined,
): Omit<ModelInputJob, 'model'> {
  const fromConfig = configInputs(file, config.values, values['checkpoint-search-path'] ?? []);
  const checkpoint = values.checkpoint ?? fromConfig.checkpoint;
  const images = values.image ?? (values['input-tensor'] ? [] : fromConfig.images);
  if (!shape && images.length === 0)
    throw new UsageError(
      'nothing to run: give --image FILE (or list images: in the config) or --input-tensor FILE --shape B,C,H,W.',
    );
  return {
    checkpoint,
    ...(shape ? { tensor: { file: values['input-tensor']!, shape } } : { images }),
    ...(values.resolution ? { resolution: intArg('resolution', values.resolution, 16, 4096) } : {}),
    ...(values.resize ? { resize: values.resize as 'eval' | 'none' } : {}),
  };
}
