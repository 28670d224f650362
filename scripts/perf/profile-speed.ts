/**
 * Benchmark: profile all ten registered SOFT variants at five resolutions.
 *
 * Target (product issue): the whole 50-profile sweep takes < 50 ms.
 * Prints figures; it is not a timed test and never fails on a slow machine.
 *
 *   npm run perf:profile
 */
import { cpus } from 'node:os';
import { performance } from 'node:perf_hooks';
import { formatMs } from '../../protocol/format';
import { analyzeConfig } from '../../server/core/config/analyze';
import type { ModelSpec } from '../../server/core/models/spec';
import { REGISTERED_MODELS } from '../../server/core/models/registry';
import { profileModel } from '../../server/core/profile/profile';

const RESOLUTIONS = [224, 256, 384, 512, 1024] as const;
const WARMUP_ROUNDS = 5;
const REPETITIONS = 40;
const TARGET_MS = 50;

const names = REGISTERED_MODELS.filter((m) => m.params.family === 'soft').map((m) => m.name);
if (names.length !== 10) console.warn(`warning: expected 10 SOFT variants, found ${names.length}`);

function analyseAll(): ModelSpec[] {
  return names.map((name) => {
    const spec = analyzeConfig(`model: ${name}\n`).spec;
    if (!spec) throw new Error(`no spec for ${name}`);
    return spec;
  });
}

/** Sink for results so the JIT cannot drop the work. */
let sink = 0;

function sweep(specs: ModelSpec[]): void {
  for (const spec of specs) {
    for (const res of RESOLUTIONS) sink += profileModel(spec, res, 1).macsByConvention.B;
  }
}

function time(fn: () => void): number {
  const t0 = performance.now();
  fn();
  return performance.now() - t0;
}

function quantile(sorted: number[], q: number): number {
  // Nearest-rank on the sorted sample.
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i]!;
}

function stats(samples: number[]): { median: number; p10: number; p90: number; min: number; max: number } {
  const s = [...samples].sort((a, b) => a - b);
  const mid = s.length >> 1;
  const median = s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
  return { median, p10: quantile(s, 0.1), p90: quantile(s, 0.9), min: s[0]!, max: s[s.length - 1]! };
}

const ms = (n: number) => formatMs(n, { unit: 'ms', decimals: 2 });

const specs = analyseAll();
const profilesPerSweep = specs.length * RESOLUTIONS.length;

// Warm up both the analysis and the profile paths (JIT, inline caches).
for (let i = 0; i < WARMUP_ROUNDS; i++) {
  analyseAll();
  sweep(specs);
}

const sweepTimes: number[] = [];
const analysisTimes: number[] = [];
for (let i = 0; i < REPETITIONS; i++) {
  analysisTimes.push(time(() => void analyseAll()));
  sweepTimes.push(time(() => sweep(specs)));
}

const sw = stats(sweepTimes);
const an = stats(analysisTimes);

console.log('Profile speed — ten SOFT variants × five resolutions');
console.log(`  node ${process.version}, ${cpus().length} CPUs (${cpus()[0]?.model ?? 'unknown'})`);
console.log(`  models: ${names.join(', ')}`);
console.log(`  resolutions: ${RESOLUTIONS.join(', ')}; batch 1`);
console.log(
  `  warm-up rounds: ${WARMUP_ROUNDS}; timed repetitions: ${REPETITIONS}; profiles per sweep: ${profilesPerSweep}`,
);
console.log('');
console.log(
  `  sweep (${profilesPerSweep} profiles) median ${ms(sw.median)}  p10 ${ms(sw.p10)}  p90 ${ms(sw.p90)}  min ${ms(sw.min)}  max ${ms(sw.max)}`,
);
console.log(`  per profile median        ${ms(sw.median / profilesPerSweep)}`);
console.log('');
console.log(`  baseline measured in the same run: parse + analyse the ${specs.length} configs (analyzeConfig)`);
console.log(`  analysis median ${ms(an.median)}  p10 ${ms(an.p10)}  p90 ${ms(an.p90)}  min ${ms(an.min)}`);
console.log(`  ratio sweep / analysis (medians): ${(sw.median / an.median).toFixed(1)}×`);
console.log('');
const met = sw.median < TARGET_MS;
console.log(`  target: sweep < ${TARGET_MS} ms (warm median) — ${met ? 'MET' : 'NOT MET'} (${ms(sw.median)})`);
if (sink === 0) console.log('  (sink)');
