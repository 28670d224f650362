/**
 * The bounded cache behind the language server's profiles (server/lsp/documents.ts): bounded by
 * weight, least recently used out first, the newest entry always kept.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { analyzeDocument } from '../server/lsp/documents';
import { WeightedLru } from '../server/lsp/weighted-lru';

describe('WeightedLru', () => {
  test('evicts the least recently used entries once the summed weight exceeds the capacity', () => {
    const lru = new WeightedLru<string, number>(10);
    lru.set('a', 1, 4);
    lru.set('b', 2, 4);
    assert.equal(lru.weight, 8);
    assert.equal(lru.get('a'), 1); // a is now the most recent: b goes first
    lru.set('c', 3, 4);
    assert.equal(lru.get('b'), undefined);
    assert.equal(lru.get('a'), 1);
    assert.equal(lru.get('c'), 3);
    assert.deepEqual([lru.size, lru.weight], [2, 8]);
  });

  test('keeps the newest entry alone when it exceeds the capacity by itself', () => {
    const lru = new WeightedLru<string, string>(10);
    lru.set('small', 's', 3);
    lru.set('huge', 'h', 35);
    assert.deepEqual([lru.size, lru.weight], [1, 35]);
    assert.equal(lru.get('huge'), 'h');
    assert.equal(lru.get('small'), undefined);
    lru.set('small', 's', 3); // the huge one is now over the bound with company: it goes
    assert.deepEqual([lru.size, lru.weight, lru.get('huge')], [1, 3, undefined]);
  });

  test('replacing a key counts its new weight once', () => {
    const lru = new WeightedLru<number, string>(100);
    lru.set(1, 'x', 30);
    lru.set(1, 'y', 50);
    assert.deepEqual([lru.size, lru.weight, lru.get(1)], [1, 50, 'y']);
  });

  test('a long run of distinct keys never holds more than the capacity (plus the newest)', () => {
    const lru = new WeightedLru<number, number>(512);
    let maxWeight = 0;
    for (let i = 0; i < 1000; i++) {
      lru.set(i, i, 1 + (i % 97));
      maxWeight = Math.max(maxWeight, lru.weight);
      assert.equal(lru.get(i), i);
    }
    assert.ok(maxWeight <= 512, `held ${maxWeight}`);
  });
});

describe('profile caches of a document (server/lsp/documents.ts)', () => {
  test('an official config keeps every resolution asked for; a 1,200-block model keeps only its latest', () => {
    const tiny = analyzeDocument('file:///t/SOFT_Tiny.yaml', 1, 'model: soft_tiny\n');
    const first = tiny.profile(224)!;
    for (const r of [256, 288, 320, 384, 448, 512]) tiny.profile(r);
    assert.equal(tiny.profile(224), first, 'SOFT_Tiny at 224 recomputed: the per-document cache dropped it');

    const big = analyzeDocument('file:///t/big.yaml', 1, 'model: soft_tiny\ndepths: [300, 300, 300, 300]\n');
    const at224 = big.profile(224)!;
    assert.equal(
      at224.stages.reduce((n, s) => n + s.depth, 0),
      1200,
    );
    assert.equal(big.profile(224), at224);
    big.profile(256);
    const again = big.profile(224)!;
    assert.notEqual(again, at224, 'a 1,200-block profile at 224 survived one at 256 in a 2,048-block cache');
    assert.deepEqual([again.params, again.macsByCategory], [at224.params, at224.macsByCategory]);
  });
});
