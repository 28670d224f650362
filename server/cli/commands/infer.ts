/**
 * `vitlens infer`: a config's model with a checkpoint (or random weights) on images or a raw
 * tensor, printing logits and top-5 (and with --maps or --query-point, each stage's attention
 * map). Bad input — a missing or corrupt checkpoint, one for another architecture, an image that
 * does not decode — exits with status 2 and a message naming the file and the problem.
 */
import { parseArgs } from 'node:util';
import { formatMs } from '../../../protocol/format';
import type { InferReport } from '../../../protocol/infer';
import { FileError } from '../../inputs/file-error';
import { configInputs } from '../../inputs/locate';
import { queryText } from '../../jobs/infer/captions';
import { WeightMismatchError } from '../../jobs/infer/model-weights';
import { InferInputError, runInference } from '../../jobs/infer/run';
import { probeDevices } from '../../runtimes/probe';
import { wantsPyTorch } from '../../runtimes/torch/python';
import { intArg, runtimeArg, seedArg, UsageError, type Command, type Out } from '../args';
import { loadRunnableConfig } from '../config';

const USAGE = `  vitlens infer <config.yaml> [--checkpoint FILE | --checkpoint-search-path DIR...]
                (--image FILE... | --input-tensor FILE --shape 1,3,H,W)
                [--backend ID] [--python PATH] [--resolution N] [--resize eval|none] [--maps] [--query-point X,Y]
                [--json]`;

/** float32 logits printed with the digits that identify them (9 significant). */
const logit = (x: number) => x.toPrecision(9);

function inferText(r: InferReport, allLogits: boolean): string {
  const out = [`${r.config ?? r.model}: ${r.model}, weights: ${r.weights}`];
  out.push(`runtime: ${r.runtime.runtime} on ${r.runtime.device}`);
  out.push(`input: batch ${r.input.batch}, ${r.input.height}×${r.input.width}; transform: ${r.input.transform}`);
  for (const it of r.items) {
    out.push('', `${it.name}${it.original ? ` (${it.original.width}×${it.original.height})` : ''}`);
    for (const [i, p] of it.top5.entries())
      out.push(
        `  ${i + 1}. ${(p.probability * 100).toFixed(2).padStart(6)} %  ${p.label} [${p.index}]  logit ${logit(p.logit)}`,
      );
    if (allLogits || r.numClasses <= 20) out.push(`  logits: [${it.logits.map(logit).join(', ')}]`);
    for (const m of it.maps) {
      const peak = m.mean.reduce((best, v, j) => (v > m.mean[best]! ? j : best), 0);
      out.push(
        `  stage ${m.stage} block ${m.block} (${m.attention}): from ${queryText(m.query)} of ${m.grid.h}×${m.grid.w}, strongest key (${Math.floor(peak / m.keyGrid.w)}, ${peak % m.keyGrid.w}) of ${m.keyGrid.h}×${m.keyGrid.w}, mean weight ${m.mean[peak]!.toPrecision(3)} — ${m.meaning}`,
      );
    }
  }
  const t = r.timingMs;
  const ms = (x: number, decimals: number): string => formatMs(x, { unit: 'ms', decimals, bare: true });
  out.push(
    '',
    `time (ms): checkpoint ${ms(t.checkpoint, 0)}, preprocess ${ms(t.preprocess, 0)}, graph ${ms(t.build, 0)}, session ${ms(t.session, 0)}, forward ${ms(t.forward, 1)} (one run, first run included)`,
  );
  for (const n of r.notes) out.push(`note: ${n}`);
  return out.join('\n');
}

async function inferCommand(args: string[], stdout: Out, stderr: Out): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      python: { type: 'string' },
      checkpoint: { type: 'string' },
      'checkpoint-search-path': { type: 'string', multiple: true },
      image: { type: 'string', multiple: true },
      'input-tensor': { type: 'string' },
      shape: { type: 'string' },
      backend: { type: 'string' },
      resolution: { type: 'string' },
      resize: { type: 'string' },
      seed: { type: 'string' },
      logits: { type: 'boolean' },
      maps: { type: 'boolean' },
      'query-point': { type: 'string' },
      json: { type: 'boolean' },
    },
  });
  if (positionals.length !== 1) throw new UsageError('infer needs exactly one config file.');
  const file = positionals[0]!;
  const runtime = values.backend ? runtimeArg(values.backend) : undefined;
  if (values.resize && values.resize !== 'eval' && values.resize !== 'none')
    throw new UsageError(`--resize must be eval or none, got "${values.resize}".`);
  if (values['input-tensor'] && values.image) throw new UsageError('give --image or --input-tensor, not both.');
  let shape: [number, number, number, number] | undefined;
  if (values['input-tensor']) {
    if (!values.shape) throw new UsageError('--input-tensor needs --shape B,C,H,W (float32 little-endian, NCHW).');
    const dims = values.shape.split(',').map((d) => intArg('shape', d.trim(), 1, 1 << 16));
    if (dims.length !== 4) throw new UsageError(`--shape needs 4 dimensions B,C,H,W, got ${dims.length}.`);
    shape = dims as [number, number, number, number];
  }
  let point: { x: number; y: number } | null = null;
  if (values['query-point']) {
    const xy = values['query-point'].split(',').map(Number);
    if (xy.length !== 2 || xy.some((v) => !(v >= 0 && v <= 1)))
      throw new UsageError(
        `--query-point needs x,y as fractions of the input in [0, 1], got "${values['query-point']}".`,
      );
    point = { x: xy[0]!, y: xy[1]! };
  }
  const a = loadRunnableConfig(file, stderr);
  if (typeof a === 'number') return a;
  // Paths in the config are relative to it, found the way the editor finds them (one resolver);
  // paths on the command line are relative to the working directory.
  const fromConfig = configInputs(file, a.values, values['checkpoint-search-path'] ?? []);
  const checkpoint = values.checkpoint ?? fromConfig.checkpoint;
  const images = values.image ?? (values['input-tensor'] ? [] : fromConfig.images);
  if (!shape && images.length === 0)
    throw new UsageError(
      'nothing to run: give --image FILE (or list images: in the config) or --input-tensor FILE --shape B,C,H,W.',
    );
  try {
    const report = await runInference(
      {
        model: a.spec,
        config: file,
        checkpoint,
        ...(shape ? { tensor: { file: values['input-tensor']!, shape } } : { images }),
        ...(values.resolution ? { resolution: intArg('resolution', values.resolution, 16, 4096) } : {}),
        ...(values.resize ? { resize: values.resize as 'eval' | 'none' } : {}),
        ...(runtime ? { runtime } : {}),
        ...(values.seed ? { seed: seedArg(values.seed) } : {}),
        ...(values.maps || point ? { maps: { point } } : {}),
      },
      () =>
        probeDevices({
          pytorch: wantsPyTorch(runtime ? [runtime] : null, false) && { python: values.python ?? null },
        }),
    );
    stdout(values.json ? JSON.stringify(report, null, 2) : inferText(report, values.logits ?? false));
    return 0;
  } catch (e) {
    if (e instanceof FileError || e instanceof WeightMismatchError || e instanceof InferInputError) {
      stderr(`vitlens infer: ${e.message}`);
      return 2;
    }
    throw e;
  }
}

export const infer: Command = { name: 'infer', usage: USAGE, run: inferCommand };
