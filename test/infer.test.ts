/**
 * `vitlens infer` as a user runs it (the bin script over the bundled CLI): the tiny official
 * checkpoint prints the official logits, images run as one batch, and every kind of bad input
 * exits with status 2 and a message naming the file and the problem.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import type { InferReport } from '../protocol/infer';
import { runInference } from '../server/jobs/infer/run';
import { FIXTURES, readJson, ROOT, specOf } from './helpers/fixtures';

function vitlens(...args: string[]) {
  const r = spawnSync(process.execPath, [path.join(ROOT, 'bin', 'vitlens.js'), 'infer', ...args], {
    encoding: 'utf8',
    cwd: ROOT,
    env: { ...process.env, XDG_RUNTIME_DIR: '/tmp' },
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const TINY = path.join('fixtures', 'configs', 'tiny_soft.vitlens.yaml');
const SOFT_TINY = path.join('fixtures', 'configs', 'soft', 'SOFT_Tiny.yaml');
const CHECKPOINT = path.join('fixtures', 'ref', 'tiny_soft.pth');
const reference = readJson('ref/tiny_soft_logits.json').tiny_soft;
const maxAbs = (a: number[], b: number[]) => Math.max(...a.map((v, i) => Math.abs(v - b[i]!)));
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'vitlens-infer-'));

describe('vitlens infer', () => {
  test('the tiny checkpoint on the official input tensor prints the official logits (ORT CPU)', () => {
    const r = vitlens(TINY, '--input-tensor', 'fixtures/ref/tiny_input_64x64.bin', '--shape', '1,3,64,64', '--json');
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout) as InferReport;
    const expected = reference['64x64'].logits_float32.flat() as number[];
    assert.ok(
      maxAbs(out.items[0]!.logits, expected) < 1e-5,
      `logits differ by ${maxAbs(out.items[0]!.logits, expected)}`,
    );
    assert.equal(out.items[0]!.top5[0]!.index, reference['64x64'].argmax[0] ?? reference['64x64'].argmax);
    assert.equal(out.runtime.id, 'ort-cpu');
    assert.deepEqual(out.checkpoint && [out.checkpoint.tensors, out.checkpoint.source], [137, 'root']);
    assert.equal(out.numClasses, 10, 'num_classes from the checkpoint head');
    // Probabilities are a softmax of the printed logits.
    const z = expected.reduce((s, v) => s + Math.exp(v), 0);
    assert.ok(Math.abs(out.items[0]!.top5[0]!.probability - Math.exp(Math.max(...expected)) / z) < 1e-6);
  });

  test('text output shows the logits with the digits that identify them', () => {
    const r = vitlens(TINY, '--input-tensor', 'fixtures/ref/tiny_input_64x64.bin', '--shape', '1,3,64,64');
    assert.equal(r.status, 0, r.stderr);
    const printed = /logits: \[(.*)\]/.exec(r.stdout)![1]!.split(',').map(Number);
    assert.ok(maxAbs(printed, reference['64x64'].logits_float32.flat()) < 1e-5);
    assert.match(r.stdout, /onnxruntime-node [\d.]+, CPU EP/);
  });

  test("the config's image (decoded, not resized) gives the official PNG logits on the reference runtime", () => {
    const r = vitlens(TINY, '--resize', 'none', '--backend', 'reference', '--json');
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout) as InferReport;
    assert.equal(path.basename(out.items[0]!.name), 'tiny_image_64x64.png');
    assert.ok(maxAbs(out.items[0]!.logits, reference.png_64x64.logits_float32.flat()) < 1e-5);
  });

  test('several images run as one batch; each row equals the image run alone', () => {
    const both = JSON.parse(
      vitlens(TINY, '--image', 'fixtures/images/chelsea.png', '--image', 'fixtures/images/coffee.jpg', '--json').stdout,
    ) as InferReport;
    const alone = JSON.parse(vitlens(TINY, '--image', 'fixtures/images/coffee.jpg', '--json').stdout) as InferReport;
    assert.equal(both.input.batch, 2);
    assert.deepEqual(
      both.items.map((i) => i.original),
      [
        { width: 451, height: 300 },
        { width: 600, height: 400 },
      ],
    );
    assert.ok(maxAbs(both.items[1]!.logits, alone.items[0]!.logits) < 1e-5);
    assert.match(both.input.transform, /resize shorter side to 71 .* centre crop 64/);
  });

  test('bad input: exit status 2 and a message that names the file and the problem', () => {
    const truncated = path.join(scratch, 'truncated.pth');
    fs.writeFileSync(truncated, fs.readFileSync(path.join(FIXTURES, 'ref', 'tiny_soft.pth')).subarray(0, 5000));
    const notImage = path.join(scratch, 'notes.png');
    fs.writeFileSync(notImage, 'these are not pixels');
    const cases: [string[], RegExp][] = [
      // A checkpoint for another architecture: the mismatch list, not a crash.
      [
        [SOFT_TINY, '--checkpoint', CHECKPOINT, '--image', 'fixtures/images/chelsea.png'],
        /tiny_soft\.pth does not fit the model[\s\S]*Shape mismatch[\s\S]*pos_embed1: checkpoint \[1, 3136, 16\], model expects \[1, 3136, 64\]/,
      ],
      [[TINY, '--checkpoint', truncated, '--image', 'fixtures/images/chelsea.png'], /truncated\.pth: /],
      [
        [TINY, '--checkpoint', 'fixtures/images/chelsea.png', '--image', 'fixtures/images/chelsea.png'],
        /chelsea\.png: .*(not a|zip|checkpoint)/i,
      ],
      [[TINY, '--image', notImage], /notes\.png: /],
      [[TINY, '--image', path.join(scratch, 'missing.jpg')], /missing\.jpg: /],
      [
        [TINY, '--input-tensor', 'fixtures/ref/tiny_input_64x64.bin', '--shape', '1,3,32,32'],
        /tiny_input_64x64\.bin: 49152 bytes, but shape \[1, 3, 32, 32\] of float32 needs 12288/,
      ],
      [[TINY, '--input-tensor', 'fixtures/ref/tiny_input_64x64.bin'], /--shape/],
    ];
    for (const [args, message] of cases) {
      const r = vitlens(...args);
      assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, message, args.join(' '));
      assert.doesNotMatch(r.stderr, /internal error|at .*\.js:\d+/, 'no stack trace');
    }
  });
});

describe('bad input is refused before any runtime starts', () => {
  const spec = specOf(fs.readFileSync(path.join(ROOT, TINY), 'utf8'));
  for (const [what, job] of [
    ['a garbage checkpoint', { checkpoint: writeScratch('garbage.pth', 'not a zip, not a pickle'), tensor: undefined }],
    [
      'a truncated input tensor',
      {
        checkpoint: CHECKPOINT,
        tensor: {
          file: writeScratch('short.bin', 'x'.repeat(10)),
          shape: [1, 3, 64, 64] as [number, number, number, number],
        },
      },
    ],
  ] as const)
    test(`${what}: the error comes before the device probe (no Dawn, no GPU driver, no Python)`, async () => {
      let probed = false;
      await assert.rejects(
        runInference(
          {
            model: spec,
            config: TINY,
            checkpoint: path.resolve(ROOT, job.checkpoint),
            ...(job.tensor ? { tensor: job.tensor } : { images: [path.join(FIXTURES, 'ref', 'tiny_image_64x64.png')] }),
          },
          async () => {
            probed = true;
            throw new Error('the device probe must not run');
          },
        ),
        (e: Error) => !/device probe/.test(e.message),
      );
      assert.equal(probed, false);
    });
});

function writeScratch(name: string, content: string): string {
  const file = path.join(scratch, name);
  fs.writeFileSync(file, content);
  return file;
}
