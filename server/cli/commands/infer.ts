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
import { queryText } from '../../jobs/infer/captions';
import { WeightMismatchError } from '../../jobs/infer/model-weights';
import { InferInputError, runInference } from '../../jobs/infer/run';
import { probeDevices } from '../../runtimes/probe';
import { wantsPyTorch } from '../../runtimes/torch/python';
import { runtimeArg, seedArg, UsageError, type Command, type Out } from '../args';
import { loadRunnableConfig } from '../config';
import { MODEL_INPUT_OPTIONS, modelInputJob, tensorShapeArg } from '../inputs';

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
      ...MODEL_INPUT_OPTIONS,
      python: { type: 'string' },
      backend: { type: 'string' },
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
  const shape = tensorShapeArg(values);
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
  const inputs = modelInputJob(file, a, values, shape);
  try {
    const report = await runInference(
      {
        model: a.spec,
        config: file,
        ...inputs,
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
