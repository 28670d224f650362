/**
 * docs/PAPER.md's Table 2 training-memory block against the script that writes it (so it cannot go
 * stale), and the facts its text states.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { describe, test } from 'node:test';
import { PAPER_DOC, readBlock } from '../scripts/paper/doc';
import { table2MemoryMarkdown, table2MemoryRows } from '../scripts/paper/table2-memory';
import { trainingMemoryAt } from '../server/core/profile/training-memory';

const doc = fs.readFileSync(PAPER_DOC, 'utf8');

describe('Table 2 training memory (docs/PAPER.md)', () => {
  const rows = table2MemoryRows();

  test('the committed block is what `npm run paper:table2-memory` writes now', () => {
    assert.equal(
      readBlock(doc, 'GENERATED', 'table2-memory'),
      table2MemoryMarkdown(rows),
      'run `npm run paper:table2-memory`',
    );
  });

  test('the five rows the paper has, at its batches; the section names what the caption leaves open', () => {
    assert.deepEqual(
      rows.map((r) => [r.file, r.paperBatch, r.publishedGB]),
      [
        ['transformer', 256, 19.0],
        ['linformer_sr', 1024, 11.7],
        ['performer', 1024, 15.0],
        ['nystrom', 1024, 17.2],
        ['soft', 1024, 15.8],
      ],
    );
    for (const open of ['Per GPU or in all', 'Precision', '"GB" and how it was measured', 'EMA copy'])
      assert.ok(doc.includes(open), open);
  });

  test('SOFT: 16 bytes per parameter of its 13,069,056, and mixed precision halves the per-image bytes', () => {
    const soft = rows.find((r) => r.file === 'soft')!;
    const e = trainingMemoryAt(soft.fits.fp32, 128);
    assert.equal(e.params, 13_069_056);
    assert.equal(e.weightBytes + e.gradientBytes + e.optimizerBytes, 16 * 13_069_056);
    assert.equal(soft.fits.mixed.asymptote.perSampleBytes * 2, soft.fits.fp32.asymptote.perSampleBytes);
  });
});
