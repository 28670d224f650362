/**
 * Prepares the GPU check's bundle, .gpu-check/ (git-ignored), for a device machine that gets a
 * copy of the working tree plus a few ignored paths, 64 MiB in all, and has no network and
 * probably no node:
 *
 *   npm run gpu-check:prepare                      # uses vitlens-linux-x64.vsix as it is
 *   npm run gpu-check:prepare -- --package         # `npm run package` first (a fresh VSIX)
 *   npm run gpu-check:prepare -- --vsix other.vsix --no-vulkan
 *
 * What goes in, and why so:
 * - node.xz: this machine's node (linux-x64; ~99 MB, ~86 MB stripped of its debug symbols),
 *   xz-compressed with the x86 branch filter, which packs machine code ~4 % tighter (~21 MB).
 * - extension.tar.xz: the VSIX's extension/ folder, whole — the CLI, the worker, vitlens_torch.py
 *   and node_modules as the extension ships them (onnxruntime-node, Dawn, sharp + libvips, TF.js),
 *   so the check runs exactly what users install (~23 MB; the zip itself is ~37 MB).
 * - check.cjs: scripts/gpu-check/check.ts bundled (plan, merged report, summary).
 * - vulkan/libvulkan1_*.deb: the Vulkan loader (~0.1 MB; `apt-get download`), for a machine that
 *   has the NVIDIA driver but not the loader, without which WebGPU finds no adapter.
 * - manifest.json: what each file is, its size and sha256, the VSIX and node it came from.
 *
 * Only tar, xz (or Python's lzma module) and sh are needed there to unpack it: run.sh.
 * Fails when the working tree and the bundle together exceed 60 MiB (plan.ts sizeBudget), to
 * leave margin under the device machine's 64 MiB.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import { builtinModules } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import * as esbuild from 'esbuild';
import { extractZip } from '../vsix';
import { sizeBudget, type SizeLine } from './plan';

const ROOT = path.resolve(__dirname, '..', '..');
const log = (s: string) => console.log(`gpu-check:prepare: ${s}`);

interface Options {
  vsix: string;
  out: string;
  packageFirst: boolean;
  vulkan: boolean;
}

function parseArgs(argv: string[]): Options {
  const o: Options = {
    vsix: path.join(ROOT, 'vitlens-linux-x64.vsix'),
    out: path.join(ROOT, '.gpu-check'),
    packageFirst: false,
    vulkan: true,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--vsix' && argv[i + 1]) o.vsix = path.resolve(argv[++i]!);
    else if (a === '--out' && argv[i + 1]) o.out = path.resolve(argv[++i]!);
    else if (a === '--package') o.packageFirst = true;
    else if (a === '--no-vulkan') o.vulkan = false;
    else throw new Error(`unknown argument: ${a} (expected --vsix FILE, --out DIR, --package, --no-vulkan)`);
  }
  return o;
}

const has = (tool: string) => spawnSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' }).status === 0;

/** Runs a command whose output goes to a file (xz -c), without blocking the other one running beside it. */
function toFile(cmd: string, args: string[], file: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const out = fs.openSync(file, 'w');
    const p = spawn(cmd, args, { stdio: ['ignore', out, 'inherit'] });
    p.on('error', reject);
    p.on('close', (code) => {
      fs.closeSync(out);
      if (code === 0) resolve();
      else reject(new Error(`${cmd} ${args.join(' ')} exited with ${code}`));
    });
  });
}

const sha256 = (file: string) => crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');

/** Bytes of what the device machine copies: tracked files and untracked ones git does not ignore. */
export function workingTreeBytes(root: string): number {
  const list = execFileSync('git', ['ls-files', '-co', '--exclude-standard', '-z'], { cwd: root, encoding: 'utf8' });
  let bytes = 0;
  for (const f of new Set(list.split('\0').filter(Boolean))) {
    // A tracked file deleted in the working tree does not travel.
    const st = fs.lstatSync(path.join(root, f), { throwIfNoEntry: false });
    if (st && (st.isFile() || st.isSymbolicLink())) bytes += st.size;
  }
  return bytes;
}

/** The newest source a VSIX is built from: a VSIX older than it does not hold the working tree's code. */
function newestSource(): { file: string; mtimeMs: number } {
  let best = { file: '', mtimeMs: 0 };
  const list = execFileSync('git', ['ls-files', '-co', '--exclude-standard', '-z', 'server', 'protocol', 'webview'], {
    cwd: ROOT,
    encoding: 'utf8',
  });
  for (const f of list.split('\0').filter(Boolean).concat('esbuild.mjs')) {
    const st = fs.statSync(path.join(ROOT, f), { throwIfNoEntry: false });
    if (st && st.mtimeMs > best.mtimeMs) best = { file: f, mtimeMs: st.mtimeMs };
  }
  return best;
}

/**
 * The compressed pieces of the last prepare whose inputs are the same now, moved aside into `tmp`
 * (the bundle folder is then made afresh): node.xz when the node binary is, extension.tar.xz when the VSIX is.
 */
function keepUnchanged(out: string, inputs: { node: string; vsix: string }, tmp: string): string[] {
  const before = (() => {
    try {
      return JSON.parse(fs.readFileSync(path.join(out, 'manifest.json'), 'utf8')) as {
        inputs?: { node?: string; vsix?: string };
        files?: Record<string, { sha256: string }>;
      };
    } catch {
      return null;
    }
  })();
  const kept: string[] = [];
  for (const [file, key] of [
    ['node.xz', 'node'],
    ['extension.tar.xz', 'vsix'],
  ] as const) {
    const at = path.join(out, file);
    if (before?.inputs?.[key] !== inputs[key] || !fs.existsSync(at) || before.files?.[file]?.sha256 !== sha256(at))
      continue;
    fs.renameSync(at, path.join(tmp, file));
    kept.push(file);
  }
  return kept;
}

/** The Vulkan loader's .deb: downloaded by apt (no install, no root needed), else from apt's cache. */
function vulkanDeb(dir: string): string | null {
  fs.mkdirSync(dir, { recursive: true });
  if (has('apt-get')) {
    const r = spawnSync('apt-get', ['download', 'libvulkan1'], { cwd: dir, encoding: 'utf8', timeout: 120_000 });
    const got = fs.readdirSync(dir).find((f) => /^libvulkan1_.*\.deb$/.test(f));
    if (got) return path.join(dir, got);
    log(`apt-get download libvulkan1 failed: ${(r.stderr || r.error?.message || '').trim().split('\n').pop()}`);
  }
  const cache = '/var/cache/apt/archives';
  const cached = fs.existsSync(cache) && fs.readdirSync(cache).find((f) => /^libvulkan1_.*_amd64\.deb$/.test(f));
  if (cached) {
    fs.copyFileSync(path.join(cache, cached), path.join(dir, cached));
    return path.join(dir, cached);
  }
  fs.rmSync(dir, { recursive: true, force: true });
  return null;
}

async function main(): Promise<number> {
  const o = parseArgs(process.argv.slice(2));
  const started = performance.now();
  if (process.platform !== 'linux' || process.arch !== 'x64')
    throw new Error(
      `the bundle carries this machine's node, which must be linux-x64 (this is ${process.platform}-${process.arch})`,
    );
  for (const tool of ['xz', 'tar', 'git'])
    if (!has(tool)) throw new Error(`${tool} is needed to prepare the bundle and is not on PATH`);

  if (o.packageFirst) {
    log('npm run package (a fresh linux-x64 VSIX)');
    execFileSync('npm', ['run', 'package'], { cwd: ROOT, stdio: 'inherit' });
  }
  if (!fs.existsSync(o.vsix))
    throw new Error(`${o.vsix} is missing: run \`npm run package\` (or prepare with --package, or --vsix FILE)`);
  const vsixStat = fs.statSync(o.vsix);
  const newest = newestSource();
  if (newest.mtimeMs > vsixStat.mtimeMs)
    log(
      `WARNING: ${path.relative(ROOT, o.vsix)} (${vsixStat.mtime.toISOString()}) is older than ${newest.file} (${new Date(newest.mtimeMs).toISOString()}): the check will run the VSIX's code, not the working tree's; prepare with --package for a fresh one`,
    );

  // xz -9e takes minutes on a small machine: a piece whose input has not changed since the last
  // prepare (same node binary, same VSIX, by sha256) is kept as it is.
  const inputs = { node: sha256(process.execPath), vsix: sha256(o.vsix) };
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vitlens-gpu-check-prepare-'));
  const kept = keepUnchanged(o.out, inputs, tmp);
  fs.rmSync(o.out, { recursive: true, force: true });
  fs.mkdirSync(o.out, { recursive: true });
  for (const f of kept) fs.renameSync(path.join(tmp, f), path.join(o.out, f));
  try {
    // The extension as the VSIX holds it.
    log(`unpacking ${path.relative(ROOT, o.vsix) || o.vsix} (${(vsixStat.size / 1048576).toFixed(1)} MiB)`);
    extractZip(o.vsix, tmp);
    const ext = path.join(tmp, 'extension');
    for (const f of ['bin/vitlens.js', 'dist/cli.js', 'dist/worker.js', 'dist/webview.js', 'dist/vitlens_torch.py'])
      if (!fs.existsSync(path.join(ext, f))) throw new Error(`the VSIX has no extension/${f}`);
    const cliVersion = execFileSync(process.execPath, [path.join(ext, 'bin', 'vitlens.js'), '--version'], {
      encoding: 'utf8',
    }).trim();

    // This node, without its debug symbols (13 MB of them; nothing at run time reads them).
    const node = path.join(tmp, 'node');
    fs.copyFileSync(process.execPath, node);
    fs.chmodSync(node, 0o755);
    if (has('strip')) execFileSync('strip', [node]);
    else log('strip is not on PATH: node travels with its debug symbols (about 1 MB more compressed)');
    const nodeVersion = execFileSync(node, ['--version'], { encoding: 'utf8' }).trim();

    // Both compressions at once (about a minute each: xz -9e is slow, and worth 2 MB here).
    if (kept.length) log(`kept from the last prepare (inputs unchanged): ${kept.join(', ')}`);
    if (kept.length < 2)
      log(
        `compressing ${['node.xz', 'extension.tar.xz'].filter((f) => !kept.includes(f)).join(' and ')} with xz -9e (x86 filter): a minute or two`,
      );
    const xz = ['--x86', '--lzma2=preset=9e', '-T1', '-c'];
    const tarFile = path.join(tmp, 'extension.tar');
    execFileSync('tar', ['-C', tmp, '-cf', tarFile, 'extension']);
    await Promise.all([
      kept.includes('node.xz') ? null : toFile('xz', [...xz, node], path.join(o.out, 'node.xz')),
      kept.includes('extension.tar.xz') ? null : toFile('xz', [...xz, tarFile], path.join(o.out, 'extension.tar.xz')),
    ]);

    // The helper, as one CommonJS file that the shipped node runs without anything else of ours.
    await esbuild.build({
      entryPoints: [path.join(ROOT, 'scripts', 'gpu-check', 'check.ts')],
      outfile: path.join(o.out, 'check.cjs'),
      bundle: true,
      platform: 'node',
      format: 'cjs',
      target: 'node20',
      minify: true,
      logLevel: 'warning',
      // Only the report writer's pure code is needed; a native runtime pulled in by mistake fails loudly here.
      external: ['onnxruntime-node', 'webgpu', 'sharp', '@tensorflow/*'],
    });
    const required = [...fs.readFileSync(path.join(o.out, 'check.cjs'), 'utf8').matchAll(/require\("([^".][^"]*)"\)/g)]
      .map((m) => m[1]!)
      .filter((m) => !m.startsWith('node:') && !builtinModules.includes(m));
    if (required.length) throw new Error(`check.cjs requires packages that do not travel: ${required.join(', ')}`);

    const deb = o.vulkan ? vulkanDeb(path.join(o.out, 'vulkan')) : null;
    if (o.vulkan && !deb)
      log('no libvulkan1 .deb (no apt, no network, nothing cached): the device machine needs its own Vulkan loader');

    const files = fs
      .readdirSync(o.out, { recursive: true, withFileTypes: true })
      .filter((e) => e.isFile())
      .map((e) => path.relative(o.out, path.join(e.parentPath, e.name)))
      .sort();
    const manifest = {
      createdAt: new Date().toISOString(),
      inputs,
      vsix: {
        file: path.relative(ROOT, o.vsix) || o.vsix,
        bytes: vsixStat.size,
        modified: vsixStat.mtime.toISOString(),
        sha256: sha256(o.vsix),
        cli: cliVersion,
      },
      node: { version: nodeVersion, from: process.execPath, stripped: has('strip') },
      vulkanLoader: deb ? path.basename(deb) : null,
      files: Object.fromEntries(
        files.map((f) => [f, { bytes: fs.statSync(path.join(o.out, f)).size, sha256: sha256(path.join(o.out, f)) }]),
      ),
    };
    fs.writeFileSync(path.join(o.out, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');

    const bundle: SizeLine[] = [...files, 'manifest.json'].map((f) => ({
      what: `${path.relative(ROOT, o.out)}/${f}`,
      bytes: fs.statSync(path.join(o.out, f)).size,
    }));
    const budget = sizeBudget(workingTreeBytes(ROOT), bundle);
    log(`bundle ready in ${((performance.now() - started) / 1000).toFixed(0)} s (${cliVersion}, node ${nodeVersion}):`);
    for (const l of budget.lines) console.log(l);
    if (!budget.fits) {
      log('the working tree and the bundle do not fit: the device machine would not take them');
      return 1;
    }
    log(
      `on the device machine: command \`bash scripts/gpu-check/run.sh "$OUT"\` with carry [".gpu-check"]; here: \`npm run gpu-check -- --quick\``,
    );
    return 0;
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

if (require.main === module)
  main().then(
    (code) => process.exit(code),
    (e: unknown) => {
      console.error(`gpu-check:prepare: ${e instanceof Error ? e.message : String(e)}`);
      process.exit(1);
    },
  );
