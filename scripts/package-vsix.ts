/**
 * Builds the VSIXes, one per platform: `vitlens-<target>.vsix` in the repository root for
 * linux-x64 (the default), linux-arm64, darwin-arm64 and win32-x64 (scripts/targets.ts).
 *
 *   npm run package                         # linux-x64: production bundles, stage, pack, list, check, smoke-run
 *   npm run package -- --target darwin-arm64
 *   npm run package -- --all-targets        # the four, from one production build (npm run package:all)
 *   npm run package -- --no-build           # pack the working tree's dist/ as it is
 *   npm run package -- --out some/where.vsix --no-smoke
 *
 * 1. `node esbuild.mjs --production` (minified bundles, no source maps), run in a temporary
 *    folder so the working tree's dist/ (the tests' development build) is not overwritten;
 *    `--no-build` packs the working tree's dist/ instead. The bundles are the same for every
 *    target: only node_modules differs.
 * 2. Checks that every package the Node bundles require is one of RUNTIMES (the packages
 *    esbuild.mjs keeps external); the client bundle may require only `vscode`.
 * 3. Stages the extension in a temporary folder, per target: the manifest with `dependencies` cut
 *    down to RUNTIMES (no devDependencies, scripts or `files`), dist/, schema/, bin/, README.md,
 *    .vscodeignore filled in for the target, and node_modules holding RUNTIMES and their production
 *    dependencies only (hard links into the project's node_modules), with sharp's @img packages of
 *    the target only: linked when installed, else fetched from the npm registry at the version and
 *    integrity package-lock.json records (scripts/platform-packages.ts).
 * 4. `vsce package --target <target>` there: vsce lists the dependencies with
 *    `npm list --production` and .vscodeignore (an allow-list) picks the files, the target's
 *    binaries among them.
 * 5. Lists the VSIX: size, files per package, every binary with what its header says; fails if a
 *    binary is not the target's format and architecture (scripts/native-header.ts), sits in another
 *    platform's folder, or one the target needs is missing.
 * 6. Smoke run, for the target this machine is only: unpacks the VSIX into a temporary folder
 *    outside the project and runs the packed CLI from there (so nothing can resolve from the
 *    project's node_modules): `vitlens devices` must load onnxruntime-node, Dawn and TF.js (webgpu,
 *    wasm, cpu), and `vitlens infer` a WebP photo through sharp on the tiny checkpoint, and, where
 *    this machine's Python has torch, the tiny checkpoint through the packed vitlens_torch.py
 *    (torch-cpu) against the official logits. A VSIX for another platform gets steps 1-5.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { builtinModules } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { formatMs } from '../protocol/format';
import { describeHeader } from './native-header';
import { placePlatformPackage } from './platform-packages';
import { hostTarget, isTarget, TARGET_FACTS, TARGETS, targetProblems, vscodeignoreFor, type Target } from './targets';
import { extractZip, listZip, zipBinaries, type ZipBinary, type ZipEntry } from './vsix';

const ROOT = path.resolve(__dirname, '..');

/** The packages the bundles keep external (esbuild.mjs `runtimes`), as the bundles require them. */
const RUNTIMES = [
  'onnxruntime-node',
  'webgpu',
  'sharp',
  '@tensorflow/tfjs',
  '@tensorflow/tfjs-backend-wasm',
  '@tensorflow/tfjs-backend-webgpu',
];
/** Required by computed name only when installed (optional backends): never packed. */
const OPTIONAL = new Set(['@tensorflow/tfjs-node', '@tensorflow/tfjs-node-gpu']);

interface Options {
  build: boolean;
  smoke: boolean;
  targets: Target[];
  /** Only with one target. */
  out?: string;
}

function parseArgs(argv: string[]): Options {
  const o: Options = { build: true, smoke: true, targets: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--no-build') o.build = false;
    else if (a === '--no-smoke') o.smoke = false;
    else if (a === '--out' && argv[i + 1]) o.out = path.resolve(argv[++i]!);
    else if (a === '--all-targets') o.targets = [...TARGETS];
    else if (a === '--target' && argv[i + 1]) {
      const t = argv[++i]!;
      if (!isTarget(t)) throw new Error(`unknown --target ${t}: one of ${TARGETS.join(', ')}`);
      if (!o.targets.includes(t)) o.targets.push(t);
    } else throw new Error(`unknown argument: ${a}`);
  }
  if (o.targets.length === 0) o.targets = ['linux-x64'];
  if (o.out && o.targets.length > 1) throw new Error('--out names one file: give it with a single --target');
  return o;
}

const vsixPath = (o: Options, t: Target) => o.out ?? path.join(ROOT, `vitlens-${t}.vsix`);
const mb = (n: number) => `${(n / 1024 / 1024).toFixed(2)} MB`;
const log = (s: string) => console.log(`package-vsix: ${s}`);

// ---------------------------------------------------------------------------------------
// 2. What the bundles require

/** Bare package names a bundle requires (string-literal require calls; builtins left out). */
function requiredPackages(bundle: string): Set<string> {
  const src = fs.readFileSync(bundle, 'utf8');
  const out = new Set<string>();
  for (const m of src.matchAll(/\brequire\(\s*["']([^"'./][^"']*)["']\s*\)/g)) {
    const spec = m[1]!;
    const name = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!;
    if (name.startsWith('node:') || builtinModules.includes(name)) continue;
    out.add(name);
  }
  return out;
}

function checkBundles(dist: string): void {
  for (const f of ['client', 'server', 'worker', 'ort-host', 'cli', 'webview']) {
    if (!fs.existsSync(path.join(dist, `${f}.js`))) throw new Error(`${dist}/${f}.js is missing: build first`);
  }
  if (!fs.existsSync(path.join(dist, 'webview.css'))) throw new Error(`${dist}/webview.css is missing: build first`);
  const client = [...requiredPackages(path.join(dist, 'client.js'))].filter((n) => n !== 'vscode');
  if (client.length) throw new Error(`dist/client.js requires packages that are not bundled: ${client.join(', ')}`);
  for (const f of ['server', 'worker', 'ort-host', 'cli']) {
    const extra = [...requiredPackages(path.join(dist, `${f}.js`))].filter(
      (n) => !RUNTIMES.includes(n) && !OPTIONAL.has(n),
    );
    if (extra.length)
      throw new Error(
        `dist/${f}.js requires ${extra.join(', ')}, which RUNTIMES in scripts/package-vsix.ts does not ship`,
      );
  }
}

// ---------------------------------------------------------------------------------------
// 1. Production build

/**
 * Runs esbuild.mjs --production in `dir`, which links to the sources, so the bundles land in
 * dir/dist and the working tree's dist/ (the tests' development build) is left as it is.
 * esbuild resolves imports from the sources' real paths, i.e. from the project's node_modules.
 */
function buildProduction(dir: string): string {
  log('building the bundles (production: minified, no source maps)');
  fs.mkdirSync(dir, { recursive: true });
  for (const name of fs.readdirSync(ROOT)) {
    if (['dist', '.git', '.e2e', 'test-output'].includes(name) || name.endsWith('.vsix')) continue;
    fs.symlinkSync(path.join(ROOT, name), path.join(dir, name));
  }
  execFileSync(process.execPath, [path.join(ROOT, 'esbuild.mjs'), '--production'], {
    cwd: dir,
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  return path.join(dir, 'dist');
}

// ---------------------------------------------------------------------------------------
// 3. Staging

interface Pkg {
  /** Relative to the project root, e.g. node_modules/@img/colour or node_modules/a/node_modules/b. */
  dir: string;
  name: string;
  version: string;
}

/** Node's lookup of `name` from the package in `fromDir` (relative), stopping at the project root. */
function resolvePackage(fromDir: string, name: string): string | undefined {
  let d = fromDir;
  for (;;) {
    const candidate = path.join(d, 'node_modules', name);
    if (fs.existsSync(path.join(ROOT, candidate, 'package.json'))) return candidate;
    if (d === '' || d === '.') return undefined;
    // Up to the folder holding the node_modules that holds this package.
    const parts = d.split(path.sep);
    const at = parts.lastIndexOf('node_modules');
    d = at <= 0 ? '' : parts.slice(0, at).join(path.sep);
  }
}

/**
 * RUNTIMES and everything they depend on in production (optional dependencies when installed),
 * sharp's platform packages apart: the same for every target.
 */
function runtimeClosure(): Map<string, Pkg> {
  const seen = new Map<string, Pkg>();
  const visit = (dir: string) => {
    if (seen.has(dir)) return;
    const pj = JSON.parse(fs.readFileSync(path.join(ROOT, dir, 'package.json'), 'utf8')) as {
      name: string;
      version: string;
      dependencies?: Record<string, string>;
      optionalDependencies?: Record<string, string>;
    };
    seen.set(dir, { dir, name: pj.name, version: pj.version });
    for (const dep of Object.keys(pj.dependencies ?? {})) {
      const d = resolvePackage(dir, dep);
      if (!d) throw new Error(`${pj.name} depends on ${dep}, which is not installed: run npm ci`);
      visit(d);
    }
    for (const dep of Object.keys(pj.optionalDependencies ?? {})) {
      // sharp lists a binary package per platform: stage() adds the target's (scripts/platform-packages.ts).
      if (dep.startsWith('@img/sharp-')) continue;
      const d = resolvePackage(dir, dep);
      if (d) visit(d);
    }
  };
  for (const r of RUNTIMES) {
    const d = resolvePackage('', r);
    if (!d) throw new Error(`${r} is not installed: run npm ci`);
    visit(d);
  }
  return seen;
}

/** Hard links when the file system allows (instant, no space), else a copy. */
function linkTree(from: string, to: string): void {
  fs.mkdirSync(path.dirname(to), { recursive: true });
  const r = spawnSync('cp', ['-al', from, to], { stdio: 'ignore' });
  if (r.status !== 0) fs.cpSync(from, to, { recursive: true });
}

function stage(dir: string, dist: string, closure: Map<string, Pkg>, target: Target): void {
  const manifest = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as Record<string, unknown>;
  const deps: Record<string, string> = {};
  for (const r of RUNTIMES)
    deps[r] = [...closure.values()].find((p) => p.dir === path.join('node_modules', r))!.version;
  delete manifest['devDependencies'];
  delete manifest['scripts'];
  delete manifest['files']; // npm's field; vsce refuses it beside a .vscodeignore
  manifest['dependencies'] = deps;
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify(manifest, null, 2) + '\n');
  for (const f of ['README.md', 'LICENSE']) {
    if (fs.existsSync(path.join(ROOT, f))) fs.copyFileSync(path.join(ROOT, f), path.join(dir, f));
  }
  const template = fs.readFileSync(path.join(ROOT, '.vscodeignore'), 'utf8');
  fs.writeFileSync(path.join(dir, '.vscodeignore'), vscodeignoreFor(template, target));
  fs.cpSync(dist, path.join(dir, 'dist'), { recursive: true });
  for (const d of ['schema', 'bin']) fs.cpSync(path.join(ROOT, d), path.join(dir, d), { recursive: true });
  // Outermost package folders only: a nested node_modules comes along with its parent.
  const dirs = [...closure.keys()].sort();
  for (const d of dirs) {
    if (dirs.some((o) => o !== d && d.startsWith(o + path.sep))) continue;
    linkTree(path.join(ROOT, d), path.join(dir, d));
  }
  // sharp's binding and libvips for the target, beside sharp where its require() finds them. They
  // are sharp's optionalDependencies, so `npm list --production` (vsce) takes them as satisfied.
  for (const name of TARGET_FACTS[target].sharp) {
    const from = placePlatformPackage(name, path.join(dir, 'node_modules', name), linkTree, log);
    log(
      `${name}: ${from === 'installed' ? 'the installed copy' : 'from the registry, integrity checked against the lock'}`,
    );
  }
}

// ---------------------------------------------------------------------------------------
// 5. Listing and checks

function packageOf(entry: string): string {
  const rel = entry.replace(/^extension\//, '');
  const m = /^(?:.*\/)?node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(rel);
  if (m) return m[1]!;
  return rel.includes('/') ? rel.split('/')[0]! + '/' : rel;
}

function report(vsix: string, entries: ZipEntry[], binaries: ZipBinary[]): void {
  const size = fs.statSync(vsix).size;
  const files = entries.filter((e) => !e.name.endsWith('/'));
  const groups = new Map<string, { files: number; size: number; packed: number }>();
  for (const e of files) {
    const g = groups.get(packageOf(e.name)) ?? { files: 0, size: 0, packed: 0 };
    g.files++;
    g.size += e.size;
    g.packed += e.compressedSize;
    groups.set(packageOf(e.name), g);
  }
  log(`contents by package (files, unpacked, packed):`);
  for (const [name, g] of [...groups].sort((a, b) => b[1].packed - a[1].packed)) {
    console.log(
      `  ${name.padEnd(36)} ${String(g.files).padStart(4)}  ${mb(g.size).padStart(10)}  ${mb(g.packed).padStart(10)}`,
    );
  }
  log('binaries (by name or header):');
  for (const e of binaries)
    console.log(`  ${e.name.replace(/^extension\//, '')}  ${mb(e.size)}  ${describeHeader(e.header)}`);
  const unpacked = files.reduce((s, e) => s + e.size, 0);
  log(
    `${path.relative(process.cwd(), vsix) || vsix}: ${mb(size)} (${size} bytes), ${files.length} files, ${mb(unpacked)} unpacked`,
  );
}

function check(entries: ZipEntry[], binaries: ZipBinary[], target: Target): void {
  const names = entries.map((e) => e.name);
  const problems = targetProblems(binaries, names, target);
  if (problems.length) throw new Error(`the ${target} VSIX does not fit its platform:\n  ${problems.join('\n  ')}`);
  for (const f of ['client.js', 'server.js', 'worker.js', 'ort-host.js', 'cli.js', 'webview.js', 'webview.css']) {
    if (!names.includes(`extension/dist/${f}`)) throw new Error(`extension/dist/${f} is missing from the VSIX`);
  }
  const maps = names.filter((n) => n.endsWith('.map'));
  if (maps.length) throw new Error(`source maps in the VSIX: ${maps.slice(0, 5).join(', ')}`);
}

// ---------------------------------------------------------------------------------------
// 6. Smoke run of the packed CLI

function smoke(vsix: string): void {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vitlens-vsix-smoke-'));
  // Node would look for packages the VSIX lacks in every node_modules above the unpacked folder.
  for (let d = path.dirname(dir); ; d = path.dirname(d)) {
    if (fs.existsSync(path.join(d, 'node_modules')))
      log(`warning: ${path.join(d, 'node_modules')} exists: the smoke run could resolve packages from it`);
    if (d === path.dirname(d)) break;
  }
  try {
    extractZip(vsix, dir);
    const ext = path.join(dir, 'extension');
    const env = { ...process.env, XDG_RUNTIME_DIR: process.env['XDG_RUNTIME_DIR'] ?? os.tmpdir(), NODE_PATH: '' };
    const cli = (args: string[]) =>
      execFileSync(process.execPath, [path.join(ext, 'bin', 'vitlens.js'), ...args], {
        cwd: dir,
        env,
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
        timeout: 120_000,
        maxBuffer: 64 << 20,
      });
    const t0 = Date.now();
    const devices = JSON.parse(cli(['devices', '--json'])) as {
      onnxruntime: { available: boolean; reason?: string };
      webgpu: { available: boolean; reason?: string };
      tfjs: { name: string; available: boolean; reason?: string }[];
      pytorch: { available: boolean; reason?: string };
    };
    const problems: string[] = [];
    if (!devices.onnxruntime.available) problems.push(`onnxruntime-node: ${devices.onnxruntime.reason}`);
    // No adapter is fine (no Vulkan driver); failing to load the package is not.
    if (!devices.webgpu.available && /cannot find|not found|ERR_MODULE|ERR_DLOPEN/i.test(devices.webgpu.reason ?? ''))
      problems.push(`webgpu: ${devices.webgpu.reason}`);
    for (const b of devices.tfjs) {
      if (b.name === 'wasm' || b.name === 'cpu') {
        if (!b.available) problems.push(`TF.js ${b.name}: ${b.reason}`);
      } else if (b.name === 'webgpu' && !b.available && /cannot find|ERR_/i.test(b.reason ?? ''))
        problems.push(`TF.js webgpu: ${b.reason}`);
    }
    const config = path.join(dir, 'tiny_soft.vitlens.yaml');
    fs.copyFileSync(path.join(ROOT, 'fixtures', 'configs', 'tiny_soft.vitlens.yaml'), config);
    const infer = JSON.parse(
      cli([
        'infer',
        config,
        '--checkpoint',
        path.join(ROOT, 'fixtures', 'ref', 'tiny_soft.pth'),
        '--image',
        path.join(ROOT, 'fixtures', 'images', 'astronaut.webp'),
        '--json',
      ]),
    ) as { items: { top5?: unknown[]; original?: { width: number } }[] };
    // Only sharp decodes WebP (the JS fallback decoders read PNG and JPEG): a result proves it loaded.
    const item = infer.items[0];
    if (!item?.top5?.length || item.original?.width !== 512)
      problems.push(`vitlens infer gave no result for the WebP photo: ${JSON.stringify(infer).slice(0, 300)}`);
    // The PyTorch runtime runs the packed vitlens_torch.py in this machine's Python, where it has torch.
    let torch = 'no Python with torch here (PyTorch runtime not run)';
    if (devices.pytorch.available) {
      const tensorRun = JSON.parse(
        cli([
          'infer',
          config,
          '--checkpoint',
          path.join(ROOT, 'fixtures', 'ref', 'tiny_soft.pth'),
          '--input-tensor',
          path.join(ROOT, 'fixtures', 'ref', 'tiny_input_64x64.bin'),
          '--shape',
          '1,3,64,64',
          '--backend',
          'torch-cpu',
          '--json',
        ]),
      ) as { runtime: { runtime: string }; items: { logits: number[] }[] };
      const official = (
        JSON.parse(fs.readFileSync(path.join(ROOT, 'fixtures', 'ref', 'tiny_soft_logits.json'), 'utf8')) as {
          tiny_soft: { '64x64': { logits_float32: number[][] } };
        }
      ).tiny_soft['64x64'].logits_float32.flat();
      const got = tensorRun.items[0]?.logits ?? [];
      const diff = Math.max(...official.map((v, i) => Math.abs(v - (got[i] ?? NaN))));
      if (!(diff < 1e-5)) problems.push(`torch-cpu from the packed vitlens_torch.py: logits differ by ${diff}`);
      else torch = `PyTorch runs the packed vitlens_torch.py (official logits within ${diff.toExponential(1)})`;
    }
    if (problems.length) throw new Error(`the packed extension's runtimes do not load:\n  ${problems.join('\n  ')}`);
    const tf = devices.tfjs
      .filter((b) => b.available)
      .map((b) => b.name)
      .join(', ');
    log(
      `smoke run of the packed CLI (${formatMs(Date.now() - t0, { unit: 's', decimals: 1 })}): onnxruntime-node loads, webgpu ${devices.webgpu.available ? 'finds an adapter' : 'loads (no adapter)'}, TF.js backends ${tf}, sharp decodes WebP, ${torch}`,
    );
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------

/** Stages, packs, lists and checks one target's VSIX; smoke-runs it when `smoke`. */
function packageTarget(target: Target, out: string, dist: string, closure: Map<string, Pkg>, smokeRun: boolean): void {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `vitlens-vsix-${target}-`));
  try {
    const ext = path.join(dir, 'extension');
    fs.mkdirSync(ext);
    stage(ext, dist, closure, target);
    log(`staged ${closure.size} packages (${RUNTIMES.join(', ')} and their dependencies) for ${target}`);
    const vsce = path.join(ROOT, 'node_modules', '@vscode', 'vsce', 'vsce');
    fs.mkdirSync(path.dirname(out), { recursive: true });
    const r = spawnSync(
      process.execPath,
      [
        vsce,
        'package',
        '--target',
        target,
        '--out',
        out,
        '--skip-license',
        '--allow-missing-repository',
        '--no-rewrite-relative-links',
        '--no-yarn',
      ],
      { cwd: ext, stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8', timeout: 300_000 },
    );
    // eslint-disable-next-line no-control-regex
    const lines = `${r.stdout}${r.stderr}`
      .replace(/\x1b\[[0-9;]*m/g, '')
      .split('\n')
      .filter((l) => l.trim() && !/npm warn Unknown (user|env|project) config/.test(l));
    if (r.status !== 0) throw new Error(`vsce package failed (${r.status ?? r.signal}):\n${lines.join('\n')}`);
    for (const l of lines) console.log(`  vsce: ${l}`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  const entries = listZip(out);
  const binaries = zipBinaries(out);
  report(out, entries, binaries);
  check(entries, binaries, target);
  log(
    `${target}: every binary is ${TARGET_FACTS[target].binary.format} ${TARGET_FACTS[target].binary.arch} or WebAssembly, and the required ones are there`,
  );
  if (!smokeRun) return;
  if (target === hostTarget()) smoke(out);
  else
    log(
      `${target}: no smoke run (this machine is ${process.platform}-${process.arch}; only the host's VSIX can run here)`,
    );
}

function main(): void {
  const o = parseArgs(process.argv.slice(2));
  const t0 = Date.now();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vitlens-vsix-build-'));
  const done: { target: Target; out: string; ms: number }[] = [];
  try {
    const dist = o.build ? buildProduction(path.join(dir, 'build')) : path.join(ROOT, 'dist');
    checkBundles(dist);
    const closure = runtimeClosure();
    log(`bundles ready in ${formatMs(Date.now() - t0, { unit: 's', decimals: 1 })}`);
    for (const target of o.targets) {
      const t = Date.now();
      log(`--- ${target}`);
      packageTarget(target, vsixPath(o, target), dist, closure, o.smoke);
      done.push({ target, out: vsixPath(o, target), ms: Date.now() - t });
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  if (done.length > 1) {
    log('summary (target, size, time to stage, pack, check and, for the host, smoke-run):');
    for (const d of done)
      console.log(
        `  ${d.target.padEnd(13)} ${mb(fs.statSync(d.out).size).padStart(10)}  ${formatMs(d.ms, { unit: 's', decimals: 1 }).padStart(7)}  ${path.relative(process.cwd(), d.out)}`,
      );
  }
  log(`done in ${formatMs(Date.now() - t0, { unit: 's', decimals: 1 })}`);
}

try {
  main();
} catch (e) {
  console.error(`package-vsix: ${(e as Error).message}`);
  process.exit(1);
}
