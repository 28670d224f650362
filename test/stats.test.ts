/**
 * server/jobs/bench/stats.ts against hand-computed values: type-7 percentiles, the stopping
 * rule, log–log power-law fits and MAC→FLOP throughput, plus the edge cases that must fail loudly.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  checkStability,
  flopsFromMacs,
  fitPowerLaw,
  gflops,
  isStable,
  percentile,
  summarize,
} from '../server/jobs/bench/stats';

function near(actual: number, expected: number, tol: number, what: string): void {
  assert.ok(Math.abs(actual - expected) <= tol, `${what}: ${actual} vs ${expected} (tol ${tol})`);
}

describe('summarize / percentile (type 7, linear interpolation)', () => {
  test('[1..10]: h = 9p → p10 = 1.9, median 5.5, p90 = 9.1', () => {
    // Shuffled on purpose: summarize must sort.
    const s = summarize([7, 3, 10, 1, 5, 9, 2, 8, 6, 4]);
    near(s.p10, 1.9, 1e-12, 'p10');
    near(s.median, 5.5, 1e-12, 'median');
    near(s.p90, 9.1, 1e-12, 'p90');
    assert.equal(s.n, 10);
    assert.equal(s.min, 1);
    assert.equal(s.max, 10);
    near(s.mean, 5.5, 1e-12, 'mean');
    near(s.relSpread, (9.1 - 1.9) / 5.5, 1e-12, 'relSpread');
  });

  test('odd count: median is the middle element; p25 of [10,20,30,40,50] = 20', () => {
    const s = summarize([50, 10, 40, 20, 30]);
    assert.equal(s.median, 30);
    near(percentile([10, 20, 30, 40, 50], 0.25), 20, 1e-12, 'p25');
    near(percentile([10, 20, 30, 40, 50], 0.1), 14, 1e-12, 'p10 (h = 0.4)');
  });

  test('one sample: every statistic is that sample and the spread is 0', () => {
    assert.deepEqual(summarize([4.2]), {
      n: 1,
      median: 4.2,
      p10: 4.2,
      p90: 4.2,
      min: 4.2,
      max: 4.2,
      mean: 4.2,
      relSpread: 0,
    });
  });

  test('does not mutate its input', () => {
    const xs = [3, 1, 2];
    summarize(xs);
    assert.deepEqual(xs, [3, 1, 2]);
  });

  test('empty, NaN and bad p throw with a clear message', () => {
    assert.throws(() => summarize([]), /summarize: no samples/);
    assert.throws(() => summarize([1, Number.NaN]), /sample 1 is not a finite number/);
    assert.throws(() => percentile([1, 2], 1.5), /p must be in \[0, 1\]/);
  });
});

describe('isStable / checkStability', () => {
  test('too few samples is never stable', () => {
    const v = checkStability([5, 5, 5], { window: 5, tolerance: 0.05 });
    assert.equal(v.stable, false);
    assert.match(v.reason, /only 3 of at least 10/);
  });

  test('a flat series is stable as soon as there are 2·window samples', () => {
    assert.equal(isStable(Array(9).fill(10), { window: 5, tolerance: 0.02 }), false);
    assert.equal(isStable(Array(10).fill(10), { window: 5, tolerance: 0.02 }), true);
  });

  test('noisy but stationary: stable', () => {
    // Periodic ±3 % noise: the last window has the same distribution as the rest.
    const xs = Array.from({ length: 40 }, (_, i) => 10 * (1 + 0.03 * Math.sin(i * 2.399)));
    const v = checkStability(xs, { window: 10, tolerance: 0.02 });
    assert.ok(v.stable, v.reason);
  });

  test('drifting timings (e.g. throttling) are not stable', () => {
    const xs = Array.from({ length: 30 }, (_, i) => 10 + 0.2 * i);
    const v = checkStability(xs, { window: 10, tolerance: 0.02 });
    assert.equal(v.stable, false);
    assert.match(v.reason, /median drifts/);
    // values 10.0…15.8: overall median 12.9, last-10 (14.0…15.8) median 14.9
    near(v.medianDrift, (14.9 - 12.9) / 12.9, 1e-9, 'median drift');
  });

  test('same median but a spread that is still widening is not stable', () => {
    // First 20: tight around 10. Last 10: same median, but widely scattered.
    const tight = Array.from({ length: 20 }, (_, i) => 10 + (i % 2 === 0 ? 0.01 : -0.01));
    const wide = [10, 6, 14, 7, 13, 10, 5, 15, 10, 10];
    const v = checkStability([...tight, ...wide], { window: 10, tolerance: 0.05 });
    assert.equal(v.stable, false, v.reason);
    assert.match(v.reason, /spread still moving/);
  });

  test('bad options throw', () => {
    assert.throws(() => isStable([1, 2, 3], { window: 0, tolerance: 0.1 }), /window must be a positive integer/);
    assert.throws(() => isStable([1, 2, 3], { window: 1, tolerance: -1 }), /tolerance must be ≥ 0/);
  });
});

describe('fitPowerLaw', () => {
  test('exact y = 3·x^1.5 recovers exponent 1.5, coefficient 3, r² = 1', () => {
    const xs = [1024, 4096, 16384, 65536];
    const f = fitPowerLaw(
      xs,
      xs.map((x) => 3 * x ** 1.5),
    );
    near(f.exponent, 1.5, 1e-12, 'exponent');
    near(f.coefficient, 3, 1e-9, 'coefficient');
    near(f.r2, 1, 1e-12, 'r2');
  });

  test('exact quadratic and linear', () => {
    const xs = [1, 2, 4, 8, 16];
    near(
      fitPowerLaw(
        xs,
        xs.map((x) => 0.5 * x * x),
      ).exponent,
      2,
      1e-12,
      'quadratic',
    );
    near(
      fitPowerLaw(
        xs,
        xs.map((x) => 7 * x),
      ).exponent,
      1,
      1e-12,
      'linear',
    );
  });

  test('noisy data: exponent close, r² < 1', () => {
    const xs = [1, 2, 4, 8, 16, 32];
    const noise = [1.1, 0.9, 1.05, 0.95, 1.08, 0.93];
    const f = fitPowerLaw(
      xs,
      xs.map((x, i) => 2 * x ** 2 * noise[i]!),
    );
    assert.ok(f.r2 < 1 && f.r2 > 0.99, `r2 ${f.r2}`);
    near(f.exponent, 2, 0.05, 'exponent');
  });

  test('hand-computed two-point fit: (1, 2) and (e, 2e²) → k = 2, c = 2', () => {
    const f = fitPowerLaw([1, Math.E], [2, 2 * Math.E ** 2]);
    near(f.exponent, 2, 1e-12, 'exponent');
    near(f.coefficient, 2, 1e-12, 'coefficient');
  });

  test('bad inputs throw', () => {
    assert.throws(() => fitPowerLaw([1], [1]), /at least 2 points/);
    assert.throws(() => fitPowerLaw([1, 2], [1]), /2 xs but 1 ys/);
    assert.throws(() => fitPowerLaw([1, 0], [1, 1]), /point 1 .* not positive/);
    assert.throws(() => fitPowerLaw([3, 3], [1, 2]), /all xs are equal/);
  });
});

describe('gflops (FLOP = 2·MAC)', () => {
  test('a 1024³ matmul (1024³ MACs) in 10 ms = 214.7 GFLOP/s', () => {
    const macs = 1024 ** 3;
    assert.equal(flopsFromMacs(macs), 2 * 1024 ** 3);
    near(gflops(macs, 10), (2 * 1024 ** 3) / 0.01 / 1e9, 1e-9, 'gflops');
    near(gflops(macs, 10), 214.748364_8, 1e-6, 'gflops literal');
  });

  test('1 GMAC in 1 s = 2 GFLOP/s; zero work = 0', () => {
    assert.equal(gflops(1e9, 1000), 2);
    assert.equal(gflops(0, 5), 0);
  });

  test('non-positive time throws', () => {
    assert.throws(() => gflops(1, 0), /ms must be a finite number > 0/);
    assert.throws(() => gflops(-1, 1), /macs must be/);
  });
});
