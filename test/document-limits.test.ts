/**
 * The two guards in front of the analysis: the per-document size limits (server/core/config/limits.ts,
 * server bug 2) at their exact boundaries, and the clamping of change ranges
 * (server/lsp/text-documents.ts, server bug 3) against an independent splice of the text. The
 * LSP-level reproducers are BUG 2 and BUG 3 in test/fuzz.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { TextDocument } from 'vscode-languageserver-textdocument';
import { analyzeConfig } from '../server/core/config/analyze';
import { isViTLensConfig } from '../server/core/config/detect';
import { checkDocumentLimits, DOCUMENT_LIMITS } from '../server/core/config/limits';
import { applyChanges } from '../server/lsp/text-documents';

const CONFIG = 'model: soft_tiny\nnewton_maxiter: 20\n';

describe('document limits: refused past each bound, analysed at it', () => {
  test(`lines: ${DOCUMENT_LIMITS.lines} lines (with or without a final line break) pass, one more is refused at that line`, () => {
    const lines = (n: number) => CONFIG + '# c\n'.repeat(n - 3);
    assert.equal(
      checkDocumentLimits(lines(DOCUMENT_LIMITS.lines)),
      null,
      'the config, 4,998 comment lines and the empty line after the last break',
    );
    assert.equal(checkDocumentLimits(lines(DOCUMENT_LIMITS.lines).slice(0, -1)), null);
    const over = lines(DOCUMENT_LIMITS.lines + 1) + 'x';
    const p = checkDocumentLimits(over);
    assert.ok(p);
    assert.match(p.message, /more than 5,000 lines, passed at line 5,001/);
    assert.equal(over.slice(0, p.span.start).split('\n').length, 5001, 'the span starts line 5,001');
  });

  test(`flow items: ${DOCUMENT_LIMITS.flowItems} commas and brackets pass, one more is refused`, () => {
    const list = (items: number) => `${CONFIG}img_size: [${Array.from({ length: items }, () => '224').join(', ')}]\n`;
    // n items: n − 1 commas and one `[`.
    assert.equal(checkDocumentLimits(list(DOCUMENT_LIMITS.flowItems)), null);
    const p = checkDocumentLimits(list(DOCUMENT_LIMITS.flowItems + 1));
    assert.match(p!.message, /more than 20,000 flow-list items and brackets.*passed at line 3/);
  });

  test('characters: 1 MiB passes, one more is refused, counted in UTF-16 code units as the editor counts them', () => {
    const padded = (n: number) => CONFIG + `notes: '${'x'.repeat(n - CONFIG.length - 10)}'\n`;
    assert.equal(padded(DOCUMENT_LIMITS.characters).length, DOCUMENT_LIMITS.characters);
    assert.equal(checkDocumentLimits(padded(DOCUMENT_LIMITS.characters)), null);
    assert.match(
      checkDocumentLimits(padded(DOCUMENT_LIMITS.characters + 1))!.message,
      /has 1,048,577 characters, passed at line 3.*Limits: 1,048,576 characters/,
    );
    // 🙂 is two code units: half as many of them reach the limit.
    const emoji = CONFIG + `notes: '${'🙂'.repeat(DOCUMENT_LIMITS.characters / 2)}'\n`;
    assert.ok(checkDocumentLimits(emoji));
  });

  test('a refused document gets exactly one error and no model; the lines before the limit still say whether it is a config', () => {
    const big = CONFIG + 'key: 1\n'.repeat(6000);
    const a = analyzeConfig(big);
    assert.deepEqual(
      a.diagnostics.map((d) => [d.code, d.severity]),
      [['document-too-large', 'error']],
    );
    assert.equal(a.spec, null);
    assert.equal(isViTLensConfig('/w/experiment.yaml', a.parsed), true, 'claimed by its model key');
    assert.equal(
      isViTLensConfig('/w/docker-compose.yaml', analyzeConfig('services:\n' + '  a: 1\n'.repeat(6000)).parsed),
      false,
    );
    // Under the limits a long document is analysed as usual.
    const under = analyzeConfig(CONFIG + '# a long comment\n'.repeat(4000));
    assert.deepEqual([under.spec?.name, under.diagnostics.length], ['soft_tiny', 0]);
  });
});

describe('change ranges are clamped to the document before they are applied', () => {
  /** What a correct editor would hold: each change spliced at offsets computed on a fresh line index. */
  const splice = (text: string, start: number, end: number, insert: string) =>
    text.slice(0, start) + insert + text.slice(end);

  test('a range past the end inserting a line break appends it and leaves every later position valid', () => {
    let doc = TextDocument.create('file:///a.vitlens.yaml', 'yaml', 1, CONFIG);
    doc = applyChanges(
      doc,
      [{ range: { start: { line: 10_000, character: 5 }, end: { line: 10_001, character: 0 } }, text: '\n' }],
      2,
    );
    assert.equal(doc.getText(), `${CONFIG}\n`);
    assert.equal(doc.version, 2);
    assert.equal(doc.lineCount, 4);
    assert.deepEqual(doc.positionAt(doc.getText().length), { line: 3, character: 0 });
    // The unclamped library call on the same input corrupts the line index (the bug): positions come back with character NaN/null.
    const raw = TextDocument.update(
      TextDocument.create('file:///b', 'yaml', 1, CONFIG),
      [{ range: { start: { line: 10_000, character: 5 }, end: { line: 10_001, character: 0 } }, text: '\n' }],
      2,
    );
    assert.ok(
      !Number.isInteger(raw.positionAt(CONFIG.length).character),
      'the library still has the bug this file works around',
    );
  });

  test('negative, fractional and non-numeric positions, inverted ranges and changes without text', () => {
    let doc = TextDocument.create('file:///a', 'yaml', 1, 'abc\ndef\n');
    doc = applyChanges(
      doc,
      [
        { range: { start: { line: -3, character: -1 }, end: { line: 0, character: 1.7 } }, text: 'X' }, // [0, 1) → "Xbc"
        { range: { start: { line: 1, character: 99 }, end: { line: 1, character: 1 } }, text: 'Y' }, // inverted, past the line end: [5, 7)
        {
          text: undefined as unknown as string,
          range: { start: { line: 0, character: 0 }, end: { line: 0, character: 0 } },
        }, // skipped
        { range: { start: { line: Number.NaN, character: 0 }, end: { line: 0, character: 0 } }, text: '>' }, // NaN → 0
      ],
      7,
    );
    let expected = splice('abc\ndef\n', 0, 1, 'X');
    expected = splice(expected, 5, 7, 'Y');
    expected = splice(expected, 0, 0, '>');
    assert.equal(doc.getText(), expected);
    assert.equal(doc.version, 7);
    assert.equal(doc.lineCount, expected.split('\n').length);
  });

  test('a notification with no usable change still moves the version', () => {
    const doc = applyChanges(
      TextDocument.create('file:///a', 'yaml', 1, 'a: 1\n'),
      [{ text: 42 as unknown as string }],
      5,
    );
    assert.deepEqual([doc.getText(), doc.version], ['a: 1\n', 5]);
  });
});
