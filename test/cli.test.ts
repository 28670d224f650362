/** The `vitlens` command as a user runs it: the bin script over the bundled CLI. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { FIXTURES, readJson, ROOT, SOFT_CONFIGS } from './helpers/fixtures';

function vitlens(...args: string[]) {
  const r = spawnSync(process.execPath, [path.join(ROOT, 'bin', 'vitlens.js'), ...args], {
    encoding: 'utf8',
    cwd: ROOT,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const tiny = path.join('fixtures', 'configs', 'soft', 'SOFT_Tiny.yaml');

describe('vitlens profile', () => {
  test('--json reports the exact parameters and per-convention MACs of SOFT_Tiny', () => {
    const r = vitlens('profile', tiny, '--json');
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    const p = out.profiles[0];
    assert.equal(p.params, 13069056);
    const { F: _f, ...ref } = readJson('ref/flops.json').models.soft_tiny.conventions_total_macs;
    assert.deepEqual(p.macsByConvention, ref);
    assert.equal(p.readmeConvention, 'B');
    assert.equal(p.unit, 'MACs');
    assert.deepEqual(
      p.stages.filter((s: any) => s.stage > 0).map((s: any) => [s.tokens, s.landmarks]),
      [
        [3136, 49],
        [784, 49],
        [196, 49],
        [50, null],
      ],
    );
    assert.deepEqual(out.diagnostics, []);
    // Per layer: the official module names, params adding up to the total.
    const layers = p.layers.map((l: any) => l.name);
    assert.deepEqual(
      layers.filter((n: string) => n.startsWith('block')),
      ['block1.0', 'block2.0', 'block2.1', 'block3.0', 'block3.1', 'block3.2', 'block4.0', 'block4.1'],
    );
    assert.equal(
      p.layers.reduce((s: number, l: any) => s + l.params, 0),
      13069056,
    );
    const block10 = readJson('ref/flops.json').models.soft_tiny.per_block_representative['block1.0'];
    const mine = p.layers.find((l: any) => l.name === 'block1.0');
    assert.equal(
      mine.macsByConvention.A,
      block10['conv2d_landmark(Qlandmark_op)'] +
        block10['conv2d_local_dwconv(attn.conv)'] +
        block10.linear_attn_proj +
        block10.linear_mlp,
    );
    // Per op: every MAC accounted for, with op labels a reader understands.
    assert.equal(
      p.ops.reduce((s: number, o: any) => s + o.macs, 0),
      p.macsByConvention.E,
    );
    const newton = p.ops.filter((o: any) => o.category === 'matmul_newton' && o.layer === 'block1.0');
    assert.equal(
      newton.reduce((s: number, o: any) => s + o.macs, 0),
      20 * 2 * 2 * 49 ** 3,
    );
  });

  test('a readable per-stage table by default; several resolutions and a batch', () => {
    const r = vitlens('profile', tiny, '--resolution', '224', '--resolution', '512', '--batch', '2');
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /13,069,056 parameters/);
    assert.match(r.stdout, /Input 512×512, batch 2/);
    assert.match(r.stdout, /stage 1\s+soft\s+16384\s+256\s+64/);
    assert.match(r.stdout, /B\s+3\.874 GMACs\s+7\.747 GFLOPs/); // batch 2 doubles MACs: 2 × 1.937
    assert.match(r.stdout, /Memory \(estimate/);
  });

  test('bad config: exit 2 with file, line, column and key', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vitlens-cli-'));
    const bad = path.join(dir, 'bad.yaml');
    fs.writeFileSync(bad, 'model: soft_tiny\nnewton_maxiter: 500\n');
    const r = vitlens('profile', bad);
    assert.equal(r.status, 2);
    assert.match(
      r.stderr,
      new RegExp(
        `${bad.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:2:17: error \\[out-of-range\\] \\(key \`newton_maxiter\`\\)`,
      ),
    );
    assert.equal(r.stdout, '');
  });

  test('missing file and bad flags: exit 2 with a clear message', () => {
    const r = vitlens('profile', 'no/such.yaml');
    assert.equal(r.status, 2);
    assert.match(r.stderr, /no\/such\.yaml: cannot read the config: ENOENT/);
    const f = vitlens('profile', tiny, '--resolution', 'abc');
    assert.equal(f.status, 2);
    assert.match(f.stderr, /--resolution must be an integer/);
    const u = vitlens('frobnicate');
    assert.equal(u.status, 2);
    assert.match(u.stderr, /unknown command "frobnicate"/);
  });

  test('every official config profiles with exit 0', () => {
    for (const f of fs.readdirSync(SOFT_CONFIGS)) {
      const r = vitlens('profile', path.join(SOFT_CONFIGS, f), '--json');
      assert.equal(r.status, 0, `${f}: ${r.stderr}`);
      const params = JSON.parse(r.stdout).profiles[0].params;
      assert.equal(params, readJson('ref/params.json').models[JSON.parse(r.stdout).model].total_params);
    }
  });
});

describe('vitlens infer --checkpoint-search-path', () => {
  // The tiny config copied away from fixtures/: its `checkpoint: ../ref/tiny_soft.pth` is not
  // next to it, and the checkpoint lies (under its own name) in a folder of its own.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vitlens-search-'));
  const config = path.join(dir, 'configs', 'tiny_soft.vitlens.yaml');
  const weights = path.join(dir, 'weights');
  fs.mkdirSync(path.dirname(config));
  fs.mkdirSync(weights);
  const yaml = fs.readFileSync(path.join(FIXTURES, 'configs', 'tiny_soft.vitlens.yaml'), 'utf8');
  fs.writeFileSync(config, yaml.replace(/^images:.*$/m, ''));
  fs.copyFileSync(path.join(FIXTURES, 'ref', 'tiny_soft.pth'), path.join(weights, 'tiny_soft.pth'));
  const run = (...extra: string[]) =>
    vitlens(
      'infer',
      config,
      '--input-tensor',
      'fixtures/ref/tiny_input_64x64.bin',
      '--shape',
      '1,3,64,64',
      '--backend',
      'reference',
      '--json',
      ...extra,
    );

  test('finds the checkpoint by name under the search folder and prints the official logits', () => {
    const r = run('--checkpoint-search-path', weights);
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.checkpoint.file, path.join(weights, 'tiny_soft.pth'));
    const expected = readJson('ref/tiny_soft_logits.json').tiny_soft['64x64'].logits_float32.flat() as number[];
    const maxAbs = Math.max(...expected.map((v, i) => Math.abs(v - out.items[0].logits[i])));
    assert.ok(maxAbs < 1e-5, `logits differ by ${maxAbs}`);
  });

  test('without it: exit 2 and a message naming where the checkpoint was expected', () => {
    const r = run();
    assert.equal(r.status, 2);
    assert.ok(r.stderr.includes(path.join(dir, 'ref', 'tiny_soft.pth')), r.stderr);
    assert.doesNotMatch(r.stderr, /internal error/);
    assert.equal(r.stdout, '');
  });
});

describe('the terminal shows what ViT Lens says, not what native libraries print', () => {
  const chatter = /artificially reduced from \d+ to \d+/;
  const noWebGpu = process.env.VITLENS_NO_WEBGPU === '1' && 'VITLENS_NO_WEBGPU=1: Dawn opens no adapter here';

  test('Dawn’s limit warnings are dropped; the CLI’s own errors still reach stderr with its exit status', () => {
    const r = vitlens('devices');
    assert.equal(r.status, 0, r.stderr);
    assert.doesNotMatch(r.stderr, chatter);
    assert.match(r.stdout, /^Host: /);
    const bad = vitlens('profile', path.join(os.tmpdir(), 'no-such-config.yaml'));
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /no-such-config\.yaml: cannot read the config: ENOENT/);
  });

  test('--verbose shows everything, Dawn’s lines included', { skip: noWebGpu }, () => {
    const r = vitlens('devices', '--verbose');
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, chatter);
  });
});

describe('vitlens bench --attention paper', () => {
  test("runs the SOFT paper's comparison set, each case naming its setting; a wrong name lists the sets", () => {
    const r = vitlens(
      'bench',
      path.join('fixtures', 'configs', 'tiny_soft.vitlens.yaml'),
      '--backend',
      'ort-cpu',
      '--attention',
      'paper',
      '--stage',
      '2',
      '--level',
      'attention',
      '--no-scaling',
      '--no-limits',
      '--budget-ms',
      '20',
      '--json',
      '--quiet',
    );
    assert.equal(r.status, 0, r.stderr);
    const cases = JSON.parse(r.stdout).cases as { attention: string; status: string; setting: string | null }[];
    assert.deepEqual(
      cases.map((c) => c.attention),
      ['soft', 'softmax', 'softmax_sr', 'performer', 'nystrom', 'linformer'],
    );
    assert.ok(cases.every((c) => c.status === 'ok'));
    // tiny_soft stage 2: a 8×8 grid (64 tokens), r = 4 → 4 landmarks; head size 16 → ⌊16·ln 16⌋ = 44 features.
    assert.deepEqual(
      cases.map((c) => c.setting),
      [
        'm = 4 landmarks, 20 Newton iterations',
        null,
        'keys reduced 4×4 (what the SOFT paper ran as Linformer)',
        'm = 44 random features (seed 1)',
        'm = 4 landmarks, 6 iterations, grid skip conv 5',
        'k = 4 (E, F learned for n = 64 tokens)',
      ],
    );
    const bad = vitlens('bench', tiny, '--attention', 'papers');
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /--attention papers: expected one of softmax, .*linformer, or paper or all/);
  });
});
