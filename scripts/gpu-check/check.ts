/**
 * The GPU check's helper on the machine at hand: run.sh calls it between the CLI's steps. It
 * travels as one bundle (.gpu-check/check.cjs, built by prepare.ts) because the device machine
 * has the shipped node and nothing else of ours: no tsx, no node_modules. run.sh copies it into
 * the unpacked extension's dist/ so the report writer finds the dashboard page (webview.js) next
 * to it, as the CLI's own does.
 *
 *   node check.cjs plan --devices devices.json --usage backends.txt [--also ID,ID] --out plan.json
 *   node check.cjs slot --remaining SECONDS --left N [--quick]     # prints "timeout<TAB>mode<TAB>flags"
 *   node check.cjs merge --config SOFT_Tiny.yaml --json bench.json --html report.html bench-*.json
 *   node check.cjs summary --dir OUT --root REPO --title TEXT --wall SECONDS
 */
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { InferReport } from '../../protocol/infer';
import { PRODUCER } from '../../server/core/version';
import { loadConfigSpec } from '../../server/cli/config';
import { analysePinv } from '../../server/jobs/pinv';
import { dashboardData } from '../../server/report/data';
import { writeReport } from '../../server/report/html';
import {
  acceptedRuntimes,
  benchSlot,
  CHECK_ORDER,
  chooseRuntimes,
  mergeBench,
  parseSteps,
  summaryText,
  type BenchJson,
  type DevicesView,
  type RuntimeChoice,
} from './plan';

const readJson = <T>(file: string): T | null => {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as T;
  } catch {
    return null;
  }
};

function plan(args: string[]): number {
  const { values } = parseArgs({
    args,
    options: {
      devices: { type: 'string' },
      usage: { type: 'string' },
      also: { type: 'string', multiple: true },
      out: { type: 'string' },
    },
  });
  const devices = readJson<DevicesView>(values.devices!) ?? {};
  const usage = values.usage && fs.existsSync(values.usage) ? fs.readFileSync(values.usage, 'utf8') : '';
  // Without the CLI's list (an older CLI worded it otherwise), the check's own runtimes are tried:
  // an id the CLI does not know then fails its step, which the summary shows.
  const accepted = acceptedRuntimes(usage) ?? [...CHECK_ORDER];
  const also = (values.also ?? []).flatMap((v) => v.split(',')).filter(Boolean);
  const choices = chooseRuntimes(devices, accepted, also);
  if (values.out) fs.writeFileSync(values.out, JSON.stringify({ accepted, choices }, null, 2) + '\n');
  for (const c of choices) if (c.run) process.stdout.write(`${c.id}\n`);
  return 0;
}

function slot(args: string[]): number {
  const { values } = parseArgs({
    args,
    options: { remaining: { type: 'string' }, left: { type: 'string' }, quick: { type: 'boolean' } },
  });
  const s = benchSlot(Number(values.remaining), Number(values.left), values.quick ?? false);
  process.stdout.write(`${s.timeoutS}\t${s.mode}\t${s.flags.join(' ')}\n`);
  return 0;
}

function merge(args: string[]): number {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { config: { type: 'string' }, json: { type: 'string' }, html: { type: 'string' } },
  });
  const reports = positionals.map((f) => readJson<BenchJson>(f)).filter((r): r is BenchJson => r !== null);
  if (reports.length === 0) {
    process.stderr.write('merge: no readable benchmark report\n');
    return 1;
  }
  const merged = mergeBench(reports);
  if (values.json) fs.writeFileSync(values.json, JSON.stringify(merged, null, 2) + '\n');
  if (values.html) {
    const spec = loadConfigSpec(values.config!, (s) => process.stderr.write(s + '\n'));
    if (typeof spec === 'number') return spec;
    // The same three views the CLI's `bench --html` writes: the profile and pinv analysis take well under a second.
    const { devices: _devices, ...bench } = merged;
    const resolution = bench.cases.find((c) => c.group === 'config')?.resolution ?? spec.resolutions[0] ?? 224;
    const pinv = spec.stages.some((s) => s.attention === 'soft' || s.attention === 'soft_norm')
      ? analysePinv(spec, { resolution })
      : null;
    writeReport(
      values.html,
      dashboardData({
        spec,
        source: values.config!,
        producer: `${PRODUCER} (GPU check: ${reports.length} runs merged)`,
        resolution,
        bench,
        pinv,
        view: 'bench',
      }),
    );
  }
  return 0;
}

/** The official float32 logits of the tiny checkpoint on its 64×64 input (fixtures/ref/tiny_soft_logits.json). */
function officialTinyLogits(root: string): number[] | null {
  const ref = readJson<{ tiny_soft?: { '64x64'?: { logits_float32?: number[][] } } }>(
    path.join(root, 'fixtures', 'ref', 'tiny_soft_logits.json'),
  );
  return ref?.tiny_soft?.['64x64']?.logits_float32?.[0] ?? null;
}

function summary(args: string[]): number {
  const { values } = parseArgs({
    args,
    options: {
      dir: { type: 'string' },
      root: { type: 'string' },
      title: { type: 'string' },
      wall: { type: 'string' },
    },
  });
  const dir = values.dir!;
  const at = (f: string) => path.join(dir, f);
  const read = (f: string) => (fs.existsSync(at(f)) ? fs.readFileSync(at(f), 'utf8') : '');
  const choices = readJson<{ choices: RuntimeChoice[] }>(at('plan.json'))?.choices ?? [];
  const run = choices.filter((c) => c.run).map((c) => c.id);
  const official = officialTinyLogits(values.root!);
  const tiny = run.map((runtime) => {
    const report = readJson<InferReport>(at(`infer-tiny-${runtime}.json`));
    const logits = report?.items[0]?.logits;
    const maxAbsDiff =
      logits && official && logits.length === official.length
        ? Math.max(...logits.map((v, i) => Math.abs(v - official[i]!)))
        : null;
    return { runtime, report, maxAbsDiff };
  });
  const softTiny = run.map((runtime) => ({
    runtime,
    report: readJson<InferReport>(at(`infer-soft_tiny-${runtime}.json`)),
  }));
  const bench = run.map((id) => readJson<BenchJson>(at(`bench-${id}.json`))).filter((r): r is BenchJson => !!r);
  const text = summaryText({
    title: values.title ?? 'ViT Lens GPU check',
    environment: read('environment.txt')
      .split('\n')
      .filter((l) => l.trim()),
    devices: readJson<DevicesView>(at('devices.json')),
    choices,
    steps: parseSteps(read('steps.tsv')),
    bench,
    tiny,
    softTiny,
    files: fs
      .readdirSync(dir)
      .filter((f) => f !== 'summary.txt')
      .sort()
      .concat('summary.txt'),
    wallS: Number(values.wall ?? 0),
  });
  fs.writeFileSync(at('summary.txt'), text);
  process.stdout.write(text);
  return 0;
}

const [command, ...rest] = process.argv.slice(2);
const commands: Record<string, (a: string[]) => number> = { plan, slot, merge, summary };
const fn = command ? commands[command] : undefined;
if (!fn) {
  process.stderr.write(`usage: check.cjs plan|slot|merge|summary …\n`);
  process.exit(2);
}
process.exitCode = fn(rest);
