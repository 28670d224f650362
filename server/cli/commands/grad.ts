/**
 * `vitlens grad`: one training step's gradients, without an optimizer step: the mean
 * cross-entropy against --label, the predicted class, and for every parameter (state-dict key,
 * model order) the L2 norm of its gradient, its own norm and their ratio, the input gradient's
 * norm and max, warnings for exploding / vanishing / non-finite gradients, and for SOFT stages
 * differentiated analytically how far that gradient is from the through-iteration one. Inputs as
 * `vitlens infer` takes them; bad input exits with status 2 and a message naming the flag or file.
 * --html writes the dashboard's self-contained report, open on its Gradients view.
 */
import { parseArgs } from 'node:util';
import { gradText, type GradReport } from '../../../protocol/grad';
import type { RuntimeId } from '../../../protocol/results';
import { FileError } from '../../inputs/file-error';
import { GradInputError, runGradients } from '../../jobs/grad/run';
import { WeightMismatchError } from '../../jobs/infer/model-weights';
import { InferInputError } from '../../jobs/infer/run';
import { probeDevices } from '../../runtimes/probe';
import { ALL_RUNTIMES } from '../../runtimes/runner';
import { wantsPyTorch } from '../../runtimes/torch/python';
import { PRODUCER } from '../../core/version';
import { dashboardData } from '../../report/data';
import { writeReport } from '../../report/html';
import { seedArg, UsageError, type Command, type Out } from '../args';
import { loadRunnableConfig } from '../config';
import { MODEL_INPUT_OPTIONS, modelInputJob, tensorShapeArg } from '../inputs';

const USAGE = `  vitlens grad <config.yaml> [--checkpoint FILE | --checkpoint-search-path DIR...]
                (--image FILE... | --input-tensor FILE --shape 1,3,H,W) --label N[,N...]
                [--train-mode] [--newton-backward analytic|unrolled] [--python PATH]
                [--runtime ID (default and \`reference\`: the float64 reference; others float32)]
                [--resolution N] [--resize eval|none] [--seed N] [--json] [--html report.html]`;

/** --label: one class index for the whole batch, or one per item (comma-separated). */
function labelArg(v: string | undefined): number[] {
  if (v === undefined) throw new UsageError('grad needs --label N: the class the cross-entropy is taken against.');
  const labels = v.split(',').map((s) => s.trim());
  if (labels.some((s) => !/^\d+$/.test(s)))
    throw new UsageError(
      `--label must be a class index (an integer ≥ 0) or a comma-separated list of them, got "${v}".`,
    );
  return labels.map(Number);
}

async function gradCommand(args: string[], stdout: Out, stderr: Out): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      ...MODEL_INPUT_OPTIONS,
      label: { type: 'string' },
      'train-mode': { type: 'boolean' },
      'newton-backward': { type: 'string' },
      runtime: { type: 'string' },
      python: { type: 'string' },
      seed: { type: 'string' },
      json: { type: 'boolean' },
      html: { type: 'string' },
    },
  });
  if (positionals.length !== 1) throw new UsageError('grad needs exactly one config file.');
  const file = positionals[0]!;
  const labels = labelArg(values.label);
  const runtime = values.runtime as RuntimeId | undefined;
  if (runtime !== undefined && !ALL_RUNTIMES.includes(runtime))
    throw new UsageError(`--runtime ${runtime}: expected one of ${ALL_RUNTIMES.join(', ')}.`);
  const nb = values['newton-backward'];
  if (nb !== undefined && nb !== 'analytic' && nb !== 'unrolled')
    throw new UsageError(`--newton-backward must be analytic or unrolled, got "${nb}".`);
  const shape = tensorShapeArg(values);
  const a = loadRunnableConfig(file, stderr);
  if (typeof a === 'number') return a;
  const inputs = modelInputJob(file, a, values, shape);
  let report: GradReport;
  try {
    report = await runGradients(
      {
        model: a.spec,
        config: file,
        ...inputs,
        labels,
        mode: values['train-mode'] ? 'train' : 'eval',
        ...(nb ? { newtonBackward: nb } : {}),
        ...(runtime ? { runtime } : {}),
        ...(values.seed ? { seed: seedArg(values.seed) } : {}),
      },
      () =>
        probeDevices({
          pytorch: wantsPyTorch(runtime ? [runtime] : null, false) && { python: values.python ?? null },
        }),
    );
  } catch (e) {
    if (
      e instanceof FileError ||
      e instanceof WeightMismatchError ||
      e instanceof InferInputError ||
      e instanceof GradInputError
    ) {
      stderr(`vitlens grad: ${e.message}`);
      return 2;
    }
    throw e;
  }
  if (values.html) {
    const html = values.html;
    const data = dashboardData({
      spec: a.spec,
      source: file,
      producer: PRODUCER,
      // The profile view at the input's size when it is square (a raw tensor may not be).
      ...(report.input.height === report.input.width ? { resolution: report.input.height } : {}),
      grad: report,
      view: 'grad',
    });
    try {
      writeReport(html, data);
    } catch (e) {
      stderr(`vitlens grad: cannot write ${html}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
      return 2;
    }
    stderr(`wrote ${html}`);
  }
  stdout(values.json ? JSON.stringify(report, null, 2) : gradText(report));
  return 0;
}

export const grad: Command = { name: 'grad', usage: USAGE, run: gradCommand };
