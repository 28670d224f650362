/**
 * UFO's token tiling on ORT CPU (server/runtimes/ort/runner.ts, ORT_CPU_TOKEN_TILE_BYTES): the harness's
 * fixed-landmark scaling sweep of soft_tiny stage 1 (D = 64, 2 heads, 1225 … 63504 tokens), run
 * tiled (the default) and untiled (the baseline) in alternating whole sweeps of one process, so
 * both see the same machine. Prints per size the median and p10–p90 of each, the tiled/untiled
 * ratio, and each sweep's fitted time exponent (target ≤ 1.15).
 *
 * Sweeps, not size-by-size A/B: two live ORT sessions interleaved run by run contend (each
 * session's idle thread pool spins for a while after a run), which made the untiled graph look
 * up to 6× slower per token than when it runs alone. The harness only ever holds one session.
 *
 *   node --import tsx scripts/perf/ufo-tiling.ts [--rounds 3] [--budget-ms 1500] [--tokens 1225,…] [--tile-bytes N] [--backend ort-cpu]
 *
 * --tile-bytes times another tile than the runtime's default in place of it (a runtime that does not
 * tile by default, e.g. --backend tfjs-wasm, needs one).
 */
import fs from 'node:fs';
import path from 'node:path';
import { analyzeConfig } from '../../server/core/config/analyze';
import { probeDevices } from '../../server/runtimes/probe';
import { runBenchmark } from '../../server/jobs/bench/harness';
import { percentile } from '../../server/jobs/bench/stats';
import { numberOption, optionValue, stringOption } from '../../test/helpers/script-args';
import type { BenchReport, RuntimeId } from '../../protocol/results';

async function sweep(
  runtime: RuntimeId,
  tokenTileBytes: number | null | undefined,
  budgetMs: number,
  tokens: number[] | undefined,
): Promise<BenchReport> {
  const spec = analyzeConfig(
    fs.readFileSync(path.join(__dirname, '..', '..', 'fixtures', 'configs', 'soft', 'SOFT_Tiny.yaml'), 'utf8'),
  ).spec!;
  const report = await probeDevices({ webgpu: false });
  return runBenchmark(
    {
      model: spec,
      config: 'SOFT_Tiny.yaml',
      runtimes: [runtime],
      attentions: ['ufo'],
      levels: ['attention'],
      resolutions: [],
      budgetMs,
      ...(tokens ? { scalingTokens: tokens } : {}),
      ...(tokenTileBytes !== undefined ? { tokenTileBytes } : {}),
    },
    report,
  );
}

async function main() {
  const rounds = numberOption('rounds', 3);
  const budgetMs = numberOption('budget-ms', 1500);
  const tokens = optionValue('tokens')?.split(',').map(Number);
  const tileBytes = optionValue('tile-bytes');
  const runtime = stringOption('backend', 'ort-cpu') as RuntimeId;
  const variants = [
    { name: 'tiled', tokenTileBytes: tileBytes === undefined ? undefined : Number(tileBytes) },
    { name: 'untiled', tokenTileBytes: null },
  ] as const;
  // medians[variant][size] over rounds; exponents[variant] per round.
  const medians = new Map<string, Map<number, number[]>>();
  const spreads = new Map<string, Map<number, string[]>>();
  const exponents = new Map<string, number[]>();
  const ratios = new Map<number, number[]>();
  let device = '';
  let tile: number | null = null;
  for (let r = 0; r < rounds; r++) {
    // Alternate which goes first, so a drift of the machine within a round favours neither.
    const order = r % 2 === 0 ? variants : [...variants].reverse();
    const byVariant = new Map<string, BenchReport>();
    for (const v of order) {
      const rep = await sweep(runtime, v.tokenTileBytes, budgetMs, tokens);
      byVariant.set(v.name, rep);
      device = rep.runtimes[0]!.device;
      if (v.name === 'tiled') tile = rep.runtimes[0]!.tokenTileBytes;
      const fit = rep.scaling.find((s) => s.attention === 'ufo');
      if (fit) (exponents.get(v.name) ?? exponents.set(v.name, []).get(v.name)!).push(fit.timeExponent);
      for (const c of rep.cases) {
        if (c.status !== 'ok' || !c.timingMs) continue;
        const m = medians.get(v.name) ?? medians.set(v.name, new Map()).get(v.name)!;
        (m.get(c.tokens) ?? m.set(c.tokens, []).get(c.tokens)!).push(c.timingMs.median);
        const sp = spreads.get(v.name) ?? spreads.set(v.name, new Map()).get(v.name)!;
        (sp.get(c.tokens) ?? sp.set(c.tokens, []).get(c.tokens)!).push(
          `${c.timingMs.p10.toFixed(2)}–${c.timingMs.p90.toFixed(2)}`,
        );
      }
    }
    const t = byVariant.get('tiled')!.cases;
    const u = byVariant.get('untiled')!.cases;
    for (const c of t) {
      const b = u.find((x) => x.tokens === c.tokens);
      if (c.timingMs && b?.timingMs)
        (ratios.get(c.tokens) ?? ratios.set(c.tokens, []).get(c.tokens)!).push(c.timingMs.median / b.timingMs.median);
    }
    console.log(
      `round ${r + 1}/${rounds}: time exponent tiled ${exponents.get('tiled')!.at(-1)!.toFixed(3)}, untiled ${exponents.get('untiled')!.at(-1)!.toFixed(3)}`,
    );
  }
  const med = (xs: number[]) => percentile(xs, 0.5);
  console.log(`\nUFO attention, soft_tiny stage 1 (D = 64, 2 heads), batch 1, ${runtime} on ${device}`);
  console.log(
    `tile: ${tile === null ? 'none' : `${tile} bytes per [B, tokens, D] activation (${Math.floor(tile / (4 * 64))} tokens at D = 64)`}; ${rounds} rounds, budget ${budgetMs} ms per case\n`,
  );
  console.log(
    'tokens   tiled median ms (p10–p90 per round)          untiled median ms (p10–p90 per round)        tiled/untiled (median of rounds)  ns/token tiled · untiled',
  );
  for (const n of [...(medians.get('tiled')?.keys() ?? [])].sort((a, b) => a - b)) {
    const tm = med(medians.get('tiled')!.get(n)!);
    const um = med(medians.get('untiled')!.get(n) ?? [NaN]);
    const col = (v: string) =>
      `${(v === 'tiled' ? tm : um).toFixed(2)} (${spreads.get(v)!.get(n)?.join(', ')})`.padEnd(44);
    console.log(
      `${String(n).padEnd(8)} ${col('tiled')} ${col('untiled')} ${med(ratios.get(n) ?? [NaN])
        .toFixed(2)
        .padEnd(33)} ${((tm * 1e6) / n).toFixed(0)} · ${((um * 1e6) / n).toFixed(0)}`,
    );
  }
  for (const v of variants) {
    const e = exponents.get(v.name)!;
    console.log(
      `time exponent ${v.name.padEnd(8)} median ${med(e).toFixed(3)} (runs: ${e.map((x) => x.toFixed(3)).join(', ')}); target ≤ 1.15: ${med(e) <= 1.15 ? 'MET' : 'NOT MET'}`,
    );
  }
  process.exit(0);
}
void main();
