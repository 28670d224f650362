/**
 * The language server over a real LSP connection (the bundled server process on
 * stdio): diagnostics at the right ranges, hover, completion and the summary.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { DiagnosticSeverity, type Diagnostic } from 'vscode-languageserver-protocol';
import { FIXTURES, officialConfigFiles, readJson, SOFT_CONFIGS } from './helpers/fixtures';
import { Commands, ProfileSweepRequest } from '../protocol/lsp';
import { LspClient, messageOf, rangeText } from './helpers/lsp';

let lsp: LspClient;
before(async () => {
  lsp = await LspClient.start();
});
after(async () => {
  await lsp.stop();
});

const errors = (ds: Diagnostic[]) => ds.filter((d) => d.severity === DiagnosticSeverity.Error);
const byCode = (ds: Diagnostic[], code: string) => ds.filter((d) => d.code === code);
let n = 0;
/** A fresh untitled-style URI with a config-like name so the server claims it. */
const scratch = () => `file:///tmp/vitlens-test/case${++n}.vitlens.yaml`;

describe('official configs', () => {
  for (const file of officialConfigFiles()) {
    test(`${path.basename(file)}: no errors or warnings`, async () => {
      const text = fs.readFileSync(file, 'utf8');
      assert.ok(!text.endsWith('\n'), 'fixtures are the unchanged official files (no trailing newline)');
      const ds = await lsp.open(LspClient.uriOf(file), text);
      assert.deepEqual(ds.filter((d) => d.severity !== DiagnosticSeverity.Information).map(messageOf), []);
      const small = /Small/.test(file);
      assert.equal(byCode(ds, 'readme-mismatch').length, small ? 1 : 0);
      if (small) {
        const d = byCode(ds, 'readme-mismatch')[0]!;
        assert.match(messageOf(d), /38\.86M/);
        assert.match(messageOf(d), /24M/);
        assert.equal(rangeText(text, d), /norm/.test(file) ? '"soft_norm_small"' : '"soft_small"');
      }
    });
  }
});

describe('broken configs: the right diagnostic at the right range', () => {
  const cases: {
    name: string;
    text: string;
    code: string;
    range: string;
    severity: DiagnosticSeverity;
    message: RegExp;
  }[] = [
    {
      name: 'YAML syntax error',
      text: 'model: "soft_tiny"\nlr: [1e-3\n',
      code: 'yaml-syntax',
      range: '',
      severity: DiagnosticSeverity.Error,
      message: /YAML/,
    },
    {
      name: 'unknown model with a suggestion',
      text: 'model: "soft_tinny"\nnewton_maxiter: 20\n',
      code: 'unknown-model',
      range: '"soft_tinny"',
      severity: DiagnosticSeverity.Error,
      message: /Did you mean `soft_tiny`/,
    },
    {
      name: 'unknown key with did-you-mean (the 2021 hyphenated key)',
      text: 'model: soft_tiny\nnewton-maxiter: 20\n',
      code: 'unknown-key',
      range: 'newton-maxiter',
      severity: DiagnosticSeverity.Warning,
      message: /Did you mean `newton_maxiter`/,
    },
    {
      name: 'wrong type',
      text: 'model: soft_tiny\nbatch_size: "128"\n',
      code: 'wrong-type',
      range: '"128"',
      severity: DiagnosticSeverity.Error,
      message: /`batch_size` must be an integer/,
    },
    {
      name: 'bad enum value',
      text: 'model: soft_tiny\nkernel_method: "cpu"\n',
      code: 'bad-enum',
      range: '"cpu"',
      severity: DiagnosticSeverity.Error,
      message: /torch, cuda/,
    },
    {
      name: 'newton_maxiter out of range',
      text: 'model: soft_tiny\nnewton_maxiter: 0\n',
      code: 'out-of-range',
      range: '0',
      severity: DiagnosticSeverity.Error,
      message: /at least 1/,
    },
    {
      name: 'embed_dims not divisible by num_heads (points at the item)',
      text: 'model: soft_tiny\nembed_dims: [64, 128, 325, 512]\n',
      code: 'dims-not-divisible',
      range: '325',
      severity: DiagnosticSeverity.Error,
      message: /Stage 3: embed_dims 325 is not divisible by num_heads 10/,
    },
    {
      name: 'list length ≠ 4',
      text: 'model: soft_tiny\ndepths: [1, 2, 3]\n',
      code: 'list-length',
      range: '[1, 2, 3]',
      severity: DiagnosticSeverity.Error,
      message: /needs 4 entries/,
    },
    {
      name: 'landmark conv drops rows',
      text: 'model: soft_tiny\nimg_size: [224, 240]\n',
      code: 'landmark-remainder',
      range: '240',
      severity: DiagnosticSeverity.Warning,
      message: /60×60 grid is not divisible by r=8: .* drops the last 4 row/,
    },
    {
      name: 'no landmarks at all',
      text: 'model: soft_tiny\nimg_size: 16\n',
      code: 'no-landmarks',
      range: '16',
      severity: DiagnosticSeverity.Error,
      message: /At 16×16 stage 1's 4×4 grid is smaller than the stride r=8/,
    },
    {
      name: 'SOFT in the cls-token stage',
      text: 'model: soft_tiny\nattention: [soft, soft, soft, soft]\n',
      code: 'soft-in-cls-stage',
      range: 'soft',
      severity: DiagnosticSeverity.Error,
      message: /Stage 4 carries the cls token/,
    },
    {
      name: 'mlp_ratios ignored by SOFT blocks',
      text: 'model: soft_tiny\nmlp_ratios: [8, 4, 4, 4]\n',
      code: 'mlp-ratio-ignored',
      range: '8',
      severity: DiagnosticSeverity.Information,
      message: /4·D FFN/,
    },
    {
      name: 'not a mapping',
      text: '- model: soft_tiny\n',
      code: 'not-a-mapping',
      range: '- model: soft_tiny\n',
      severity: DiagnosticSeverity.Error,
      message: /mapping/,
    },
    {
      name: 'no model and no architecture',
      text: 'newton_maxiter: 20\n',
      code: 'missing-model',
      range: 'newton_maxiter',
      severity: DiagnosticSeverity.Error,
      message: /embed_dims/,
    },
    {
      name: 'non-finite number',
      text: 'model: soft_tiny\nlr: .nan\n',
      code: 'out-of-range',
      range: '.nan',
      severity: DiagnosticSeverity.Error,
      message: /finite/,
    },
    {
      name: 'checkpoint that does not exist',
      text: 'model: soft_tiny\ncheckpoint: no/such/file.pth\n',
      code: 'file-not-found',
      range: 'no/such/file.pth',
      severity: DiagnosticSeverity.Warning,
      message: /Checkpoint file not found/,
    },
  ];
  for (const c of cases) {
    test(c.name, async () => {
      const ds = await lsp.open(scratch(), c.text);
      const hits = byCode(ds, c.code);
      assert.equal(hits.length >= 1, true, `no ${c.code} in ${JSON.stringify(ds.map((d) => [d.code, messageOf(d)]))}`);
      const d = hits[0]!;
      assert.equal(d.severity, c.severity);
      assert.match(messageOf(d), c.message);
      assert.equal(d.source, 'vitlens');
      if (c.code !== 'yaml-syntax') assert.equal(rangeText(c.text, d), c.range);
      else assert.ok(d.range.start.line >= 1, 'the syntax error is after the valid first line');
    });
  }

  test('a broken document does not affect another open document', async () => {
    const good = LspClient.uriOf(path.join(SOFT_CONFIGS, 'SOFT_Medium.yaml'));
    await lsp.open(good, fs.readFileSync(path.join(SOFT_CONFIGS, 'SOFT_Medium.yaml'), 'utf8'));
    const junk = scratch();
    const ds = await lsp.open(junk, 'model: [\u0000\u0001 {{{ "\n\t- : : ]]]'.repeat(2000));
    assert.ok(errors(ds).length > 0);
    const h = await lsp.hover(good, 0, 2);
    assert.match(JSON.stringify(h), /45,812,707 parameters/);
  });
});

describe('documents that are not ViT Lens configs are left alone', () => {
  test('a GitHub workflow YAML gets no diagnostics, hover or lenses', async () => {
    const uri = 'file:///tmp/vitlens-test/.github/workflows/ci.yml';
    const ds = await lsp.open(uri, 'name: ci\non: [push]\njobs:\n  build:\n    runs-on: ubuntu-latest\n');
    assert.deepEqual(ds, []);
    assert.equal(await lsp.hover(uri, 0, 1), null);
    assert.deepEqual(await lsp.codeLens(uri), []);
  });

  test('a YAML with SOFT keys is claimed whatever its name', async () => {
    const ds = await lsp.open('file:///tmp/vitlens-test/experiment.yaml', 'model: soft_tiny\nnewton_maxiter: 0\n');
    assert.equal(byCode(ds, 'out-of-range').length, 1);
  });
});

describe('hover, completion and the summary', () => {
  const tiny = path.join(SOFT_CONFIGS, 'SOFT_Tiny.yaml');
  const uri = LspClient.uriOf(tiny);
  before(async () => {
    await lsp.open(uri, fs.readFileSync(tiny, 'utf8'));
  });

  test('hover on model: exact parameters, per-stage table, MACs per convention labelled', async () => {
    const h = await lsp.hover(uri, 0, 3);
    const md = (h!.contents as { value: string }).value;
    assert.match(md, /13,069,056 parameters/);
    assert.match(md, /\| 1 \| soft \| 56×56 \| 3136 \| 49 \| 64 \| 2 \| 1 \|/);
    assert.match(md, /\| 4 \| softmax \| 7×7 \| 50 \| – \| 512 \| 16 \| 2 \|/);
    // Convention B is the README's: 1.937 GMACs = 3.874 GFLOPs; E includes Newton: 2.221.
    assert.match(md, /\| B ← README \| .* \| 1\.937 \| 3\.874 \|/);
    assert.match(md, /\| E \| .* \| 2\.221 \| 4\.442 \|/);
    assert.match(md, /GMACs/);
    assert.match(md, /Memory \(estimate/);
    assert.match(md, /variant A, 20 iterations/);
  });

  test('hover on a key explains it', async () => {
    const h = await lsp.hover(uri, 1, 3);
    assert.match((h!.contents as { value: string }).value, /Newton–Raphson iterations/);
    assert.match((h!.contents as { value: string }).value, /GMACs in Newton iterations/);
  });

  test('inlay hint and CodeLens carry the summary line', async () => {
    const hints = await lsp.inlayHints(uri);
    assert.equal(hints!.length, 1);
    assert.equal(String(hints![0]!.label).trim(), '13.07M params · 1.94 GMACs (B) @224');
    assert.equal(hints![0]!.position.line, 0);
    const lenses = await lsp.codeLens(uri);
    assert.deepEqual(
      lenses!.map((l) => [l.command!.title, l.command!.command, l.command!.arguments]),
      [
        ['ViT Lens: 13.07M params · 1.94 GMACs (B) @224', Commands.showProfile, [uri]],
        ['Benchmark attention', Commands.benchmark, [uri]],
        ['Benchmark training step', Commands.benchmarkTraining, [uri]],
        ['Pseudo-inverse convergence', Commands.pinv, [uri]],
        ['Approximation quality', Commands.approx, [uri]],
        ['Run SOFT inference on image…', Commands.infer, [uri]],
      ],
    );
  });

  test('no pseudo-inverse lens without SOFT attention; no run lenses on a config with errors', async () => {
    const ufo = scratch();
    await lsp.open(ufo, 'model: soft_tiny\nattention: ufo\n');
    const titles = (await lsp.codeLens(ufo))!.map((l) => l.command!.title);
    assert.match(titles[0]!, /^ViT Lens: [\d.]+M params · [\d.]+ GMACs \(B\) @224$/);
    // Stage 4's softmax (the cls block) still has approximations to measure; UFO's stages have none.
    assert.deepEqual(titles.slice(1), [
      'Benchmark attention',
      'Benchmark training step',
      'Approximation quality',
      'Run UFO inference on image…',
    ]);
    const broken = scratch();
    await lsp.open(broken, 'model: soft_tiny\nnewton_maxiter: -1\n');
    assert.deepEqual(
      (await lsp.codeLens(broken))!.map((l) => l.command!.command),
      [Commands.showProfile],
    );
  });

  test('a config naming its checkpoint and an image also gets the Gradients lens; without an image it does not', async () => {
    const tiny = path.join(FIXTURES, 'configs', 'tiny_soft.vitlens.yaml');
    const tinyUri = LspClient.uriOf(tiny);
    const text = fs.readFileSync(tiny, 'utf8');
    await lsp.open(tinyUri, text);
    const lenses = (await lsp.codeLens(tinyUri))!;
    assert.equal(lenses[0]!.command!.title, 'ViT Lens: 0.27M params · 0.01 GMACs (B) @64');
    assert.deepEqual(
      lenses.slice(1).map((l) => [l.command!.title, l.command!.command, l.command!.arguments]),
      [
        ['Benchmark attention', Commands.benchmark, [tinyUri]],
        ['Benchmark training step', Commands.benchmarkTraining, [tinyUri]],
        ['Pseudo-inverse convergence', Commands.pinv, [tinyUri]],
        ['Approximation quality', Commands.approx, [tinyUri]],
        ['Run SOFT inference on image…', Commands.infer, [tinyUri]],
        ['Gradients', Commands.grad, [tinyUri]],
      ],
    );
    for (const [what, without] of [
      ['no image', text.replace(/^images:.*\n/m, '')],
      ['no checkpoint', text.replace(/^checkpoint:.*\n/m, '')],
      ['an empty image list', text.replace(/^images:.*$/m, 'images: []')],
    ] as const) {
      const u = scratch();
      await lsp.open(u, without);
      assert.ok(
        !(await lsp.codeLens(u))!.some((l) => l.command!.command === Commands.grad),
        `no Gradients lens with ${what}`,
      );
    }
  });

  test('completion: missing keys at line start, model names and enum values after a key', async () => {
    const u = scratch();
    const text = 'model: soft_tiny\n\nkernel_method: \nmodel: \n';
    await lsp.open(u, text);
    const keys = (await lsp.completion(u, 1, 0)).map((i) => i.label);
    assert.ok(keys.includes('newton_maxiter') && keys.includes('attention') && keys.includes('img_size'));
    assert.ok(!keys.includes('model'), 'keys already present are not offered');
    const methods = (await lsp.completion(u, 2, 15)).map((i) => i.label);
    assert.deepEqual(methods.sort(), ['cuda', 'torch']);
    const models = (await lsp.completion(u, 3, 7)).map((i) => i.label);
    assert.equal(models.length, 17);
    assert.ok(
      models.includes('soft_norm_huge') && models.includes('ufo_vit_small') && models.includes('vit_paper_fig1b'),
    );
  });

  test('vitlens/profile: the full summary, with MACs vs FLOPs stated', async () => {
    const flops = readJson('ref/flops.json');
    const p = await lsp.profile({ uri, resolution: 224 });
    assert.ok(p);
    assert.equal(p.params, 13069056);
    assert.equal(p.unit, 'MACs');
    // SOFT_Tiny.yaml sets kernel_method "torch", the path the reference was measured with.
    const { F: _ptflopsStyle, ...ref } = flops.models.soft_tiny.conventions_total_macs;
    assert.deepEqual(p.macsByConvention, ref);
    for (const c of p.conventions) assert.equal(c.flops, 2 * c.macs);
    assert.equal(p.memory.kind, 'estimate');
    const at512 = await lsp.profile({ uri, resolution: 512 });
    assert.deepEqual(
      at512!.stages.filter((s) => s.landmarks !== null).map((s) => s.landmarks),
      [256, 256, 256],
    );
  });

  test('vitlens/profileSweep: each attention on the same backbone equals the profile of that config', async () => {
    const sweep = await lsp.conn.sendRequest(ProfileSweepRequest, { uri, resolutions: [224, 512] });
    assert.ok(sweep);
    assert.deepEqual(sweep.attentions, ['soft', 'ufo', 'performer', 'nystrom', 'linformer', 'softmax_sr', 'softmax']);
    assert.equal(sweep.points.length, 14);
    const at = (a: string, r: number) => sweep.points.find((p) => p.attention === a && p.resolution === r)!;
    const own = await lsp.profile({ uri, resolution: 512 });
    assert.equal(at('soft', 512).macs, own!.macsByConvention.B);
    assert.equal(at('soft', 512).peakBytes, own!.memory.peakTotalBytes);
    // The same swap written as a config: an independent path through the config analysis.
    for (const kind of ['ufo', 'softmax', 'performer', 'nystrom', 'linformer']) {
      const u = scratch();
      await lsp.open(u, `model: soft_tiny\nattention: ${kind}\n`);
      for (const r of [224, 512]) {
        const p = await lsp.profile({ uri: u, resolution: r });
        assert.deepEqual(
          [at(kind, r).macs, at(kind, r).params, at(kind, r).tokens],
          [p!.macsByConvention.B, p!.params, p!.stages.find((s) => s.stage === 1)!.tokens],
        );
      }
    }
    await assert.rejects(
      lsp.conn.sendRequest(ProfileSweepRequest, { uri, resolutions: [224, 10] }),
      /resolutions must be/,
    );
  });

  test('a key set twice is an error on the second occurrence, found in linear time', async () => {
    const u = scratch();
    const ds = await lsp.open(u, 'model: soft_tiny\nnewton_maxiter: 20\nnewton_maxiter: 10\n');
    const dup = errors(ds).filter((d) => /set twice/.test(messageOf(d)));
    assert.equal(dup.length, 1);
    assert.deepEqual(dup[0]!.range.start, { line: 2, character: 0 });
    // 20,000 distinct keys: quadratic checking took seconds; now well under one.
    const many = scratch();
    const t = performance.now();
    await lsp.open(many, 'model: soft_tiny\n' + Array.from({ length: 20000 }, (_, i) => `k${i}: 1`).join('\n') + '\n');
    assert.ok(performance.now() - t < 1500, `20,000 keys diagnosed in ${(performance.now() - t).toFixed(0)} ms`);
  });

  test('a swapped attention is profiled on the identical backbone', async () => {
    const u = scratch();
    await lsp.open(u, 'model: soft_tiny\nattention: ufo\n');
    const p = await lsp.profile({ uri: u });
    assert.deepEqual(
      p!.stages.filter((s) => s.stage > 0).map((s) => s.attention),
      ['ufo', 'ufo', 'ufo', 'softmax'],
    );
    assert.ok(p!.notes.some((x) => /swapped/.test(x)));
    assert.equal(p!.macsByCategory.matmul_newton, 0);
  });
});
