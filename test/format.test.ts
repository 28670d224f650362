/**
 * protocol/format.ts: the one set of number formatters behind the page, the CLI and the hovers.
 * Each case is a string some view printed before the formatters were merged, so the options
 * that reproduce each view's output are pinned here.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  formatBytes,
  formatFlops,
  formatInt,
  formatMacs,
  formatMs,
  formatNumber,
  formatParams,
  GIGA_COLUMN,
  REPORT_BYTES,
  REPORT_GIGA,
  REPORT_MILLIONS,
  sig,
  si,
  WHOLE_MIB,
} from '../protocol/format';

describe('numbers', () => {
  test('significant digits, trailing zeros dropped unless asked to keep them', () => {
    assert.deepEqual(
      [1.234, 12.34, 123.4, 1234.5, 0.0001234, 0, -0.5].map((v) => sig(v)),
      ['1.23', '12.3', '123', '1235', '0.000123', '0', '-0.5'],
    );
    assert.deepEqual(
      [12, 0.1234, 0].map((v) => formatNumber(v, { trim: false, maxDecimals: 2 })),
      ['12.0', '0.12', '0.00'],
    );
    assert.equal(formatNumber(1.5, { decimals: 2 }), '1.50');
  });
});

describe('bytes', () => {
  test('the page: three significant digits, the unit follows the value', () => {
    assert.deepEqual(
      [512, 2048, 1.5 * 2 ** 20, 60.09 * 2 ** 30, 3 * 2 ** 40].map((b) => formatBytes(b)),
      ['512 B', '2 KiB', '1.5 MiB', '60.1 GiB', '3 TiB'],
    );
    assert.equal(formatBytes(null), '—');
  });
  test('the text outputs: fixed decimals up to GiB; refusals from MiB; RSS in whole MiB; limits in whole MiB', () => {
    assert.deepEqual(
      [512, 2048, 1.5 * 2 ** 20, 60.09 * 2 ** 30, 3 * 2 ** 40].map((b) => formatBytes(b, REPORT_BYTES)),
      ['512 B', '2.0 KiB', '1.5 MiB', '60.09 GiB', '3072.00 GiB'],
    );
    assert.equal(formatBytes(2048, { ...REPORT_BYTES, smallest: 'MiB' }), '0.0 MiB');
    assert.equal(
      formatBytes(300.6 * 2 ** 20, { decimals: { MiB: 0, GiB: 2 }, smallest: 'MiB', largest: 'GiB' }),
      '301 MiB',
    );
    assert.equal(formatBytes(4 * 2 ** 30, WHOLE_MIB), '4096 MiB');
    assert.equal(formatBytes(Number.NaN, { ...WHOLE_MIB, missing: 'unknown' }), 'unknown');
  });
});

describe('SI counts', () => {
  test('the page picks the prefix; the text outputs fix it', () => {
    assert.deepEqual(
      [formatMacs(1.937e9), formatFlops(3.874e9), formatParams(13_069_056), si(950, '')],
      ['1.94 GMACs', '3.87 GFLOPs', '13.1 M', '950'],
    );
    assert.deepEqual(
      [
        formatParams(13_069_056, REPORT_MILLIONS),
        formatMacs(1.937e9, REPORT_GIGA),
        formatFlops(2 * 1.937e9, REPORT_GIGA),
      ],
      ['13.07M', '1.94 GMACs', '3.87 GFLOPs'],
    );
    assert.deepEqual([formatMacs(1.937e9, GIGA_COLUMN), formatMacs(2e6, GIGA_COLUMN)], ['1.937', '0.002']);
  });
  test('integers: thin-space groups on the page, commas in the text outputs', () => {
    assert.deepEqual([formatInt(63504), formatInt(13_069_056, { group: ',' })], ['63\u2009504', '13,069,056']);
  });
});

describe('times', () => {
  test('the page: µs, ms or s by magnitude', () => {
    assert.deepEqual(
      [0.842, 12.34, 1240].map((v) => formatMs(v)),
      ['842 µs', '12.3 ms', '1.24 s'],
    );
  });
  test('the CLI: fixed unit, columns without it', () => {
    assert.deepEqual(
      [123.4, 12.34, 1.234, 0.1234].map((v) => formatMs(v, { unit: 'ms', bare: true, trim: false, maxDecimals: 2 })),
      ['123', '12.3', '1.23', '0.12'],
    );
    assert.equal(formatMs(12_345, { unit: 's', decimals: 1 }), '12.3 s');
    assert.equal(formatMs(12.4, { unit: 'ms', decimals: 0 }), '12 ms');
  });
});
