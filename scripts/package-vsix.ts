/**
 * Builds the linux-x64 VSIX: `vitlens-linux-x64.vsix` in the repository root.
 *
 *   npm run package                         # production bundles, stage, pack, list, check, smoke-run
 *   npm run package -- --no-build           # pack the working tree's dist/ as it is
 *   npm run package -- --out some/where.vsix --no-smoke
 *
 * 1. `node esbuild.mjs --production` (minified bundles, no source maps), run in a temporary
 *    folder so the working tree's dist/ (the tests' development build) is not overwritten;
 *    `--no-build` packs the working tree's dist/ instead.
 * 2. Checks that every package the Node bundles require is one of RUNTIMES (the packages
 *    esbuild.mjs keeps external); the client bundle may require only `vscode`.
 * 3. Stages the extension in a temporary folder: the manifest with `dependencies` cut down to
 *    RUNTIMES (no devDependencies, scripts or `files`), dist/, schema/, bin/, README.md,
 *    .vscodeignore, and node_modules holding RUNTIMES and their production dependencies only
 *    (hard links into the project's node_modules; sharp's @img packages of linux-x64 only).
 * 4. `vsce package --target linux-x64` there: vsce lists the dependencies with
 *    `npm list --production` and .vscodeignore (an allow-list) picks the files, linux-x64's
 *    binaries among them.
 * 5. Lists the VSIX: size, files per package, every native binary; fails if a binary of another
 *    platform is inside or one of linux-x64's is missing.
 * 6. Smoke run: unpacks the VSIX into a temporary folder outside the project and runs the packed
 *    CLI from there (so nothing can resolve from the project's node_modules): `vitlens devices`
 *    must load onnxruntime-node, Dawn and TF.js (webgpu, wasm, cpu), and `vitlens infer` a WebP
 *    photo through sharp on the tiny checkpoint, and, where this machine's Python has torch, the tiny
 *    checkpoint through the packed vitlens_torch.py (torch-cpu) against the official logits.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { builtinModules } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { formatMs } from '../protocol/format';
import { extractZip, listZip, NATIVE, OTHER_PLATFORM, type ZipEntry } from './vsix';

const ROOT = path.resolve(__dirname, '..');
const TARGET = 'linux-x64';

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
/** The binaries a linux-x64 VSIX must hold. */
const REQUIRED_NATIVE = [
  /^extension\/node_modules\/onnxruntime-node\/bin\/napi-v\d+\/linux\/x64\/onnxruntime_binding\.node$/,
  /^extension\/node_modules\/onnxruntime-node\/bin\/napi-v\d+\/linux\/x64\/libonnxruntime\.so\.1$/,
  /^extension\/node_modules\/webgpu\/dist\/linux-x64\/dawn\.node$/,
  /^extension\/node_modules\/@img\/sharp-linux-x64\/lib\/sharp-linux-x64-[\d.]+\.node$/,
  /^extension\/node_modules\/@img\/sharp-libvips-linux-x64\/lib\/libvips-cpp\.so\.[\d.]+$/,
  /^extension\/node_modules\/@tensorflow\/tfjs-backend-wasm\/dist\/tfjs-backend-wasm(-simd|-threaded-simd)?\.wasm$/,
];

interface Options {
  build: boolean;
  smoke: boolean;
  out: string;
}

function parseArgs(argv: string[]): Options {
  const o: Options = { build: true, smoke: true, out: path.join(ROOT, `vitlens-${TARGET}.vsix`) };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--no-build') o.build = false;
    else if (a === '--no-smoke') o.smoke = false;
    else if (a === '--out' && argv[i + 1]) o.out = path.resolve(argv[++i]!);
    else if (a === '--target' && argv[i + 1]) {
      const t = argv[++i];
      if (t !== TARGET)
        throw new Error(`only ${TARGET} is packaged (.vscodeignore names its binaries); got --target ${t}`);
    } else throw new Error(`unknown argument: ${a}`);
  }
  return o;
}

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
  for (const f of ['client', 'server', 'worker', 'cli', 'webview']) {
    if (!fs.existsSync(path.join(dist, `${f}.js`))) throw new Error(`${dist}/${f}.js is missing: build first`);
  }
  if (!fs.existsSync(path.join(dist, 'webview.css'))) throw new Error(`${dist}/webview.css is missing: build first`);
  const client = [...requiredPackages(path.join(dist, 'client.js'))].filter((n) => n !== 'vscode');
  if (client.length) throw new Error(`dist/client.js requires packages that are not bundled: ${client.join(', ')}`);
  for (const f of ['server', 'worker', 'cli']) {
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

/** RUNTIMES and everything they depend on in production (optional dependencies when installed). */
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
      // sharp lists a binary package per platform; only linux-x64's belong in this VSIX.
      if (dep.startsWith('@img/sharp-') && !dep.endsWith(`-${TARGET}`)) continue;
      const d = resolvePackage(dir, dep);
      if (d) visit(d);
      else if (dep.startsWith('@img/')) throw new Error(`${dep} is not installed: sharp has no ${TARGET} binary here`);
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

function stage(dir: string, dist: string, closure: Map<string, Pkg>): void {
  const manifest = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as Record<string, unknown>;
  const deps: Record<string, string> = {};
  for (const r of RUNTIMES)
    deps[r] = [...closure.values()].find((p) => p.dir === path.join('node_modules', r))!.version;
  delete manifest['devDependencies'];
  delete manifest['scripts'];
  delete manifest['files']; // npm's field; vsce refuses it beside a .vscodeignore
  manifest['dependencies'] = deps;
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify(manifest, null, 2) + '\n');
  for (const f of ['README.md', '.vscodeignore', 'LICENSE']) {
    if (fs.existsSync(path.join(ROOT, f))) fs.copyFileSync(path.join(ROOT, f), path.join(dir, f));
  }
  fs.cpSync(dist, path.join(dir, 'dist'), { recursive: true });
  for (const d of ['schema', 'bin']) fs.cpSync(path.join(ROOT, d), path.join(dir, d), { recursive: true });
  // Outermost package folders only: a nested node_modules comes along with its parent.
  const dirs = [...closure.keys()].sort();
  for (const d of dirs) {
    if (dirs.some((o) => o !== d && d.startsWith(o + path.sep))) continue;
    linkTree(path.join(ROOT, d), path.join(dir, d));
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

function report(vsix: string, entries: ZipEntry[]): void {
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
  log('native binaries:');
  for (const e of files.filter((f) => NATIVE.test(f.name)))
    console.log(`  ${e.name.replace(/^extension\//, '')}  ${mb(e.size)}`);
  const unpacked = files.reduce((s, e) => s + e.size, 0);
  log(
    `${path.relative(process.cwd(), vsix) || vsix}: ${mb(size)} (${size} bytes), ${files.length} files, ${mb(unpacked)} unpacked`,
  );
}

function check(entries: ZipEntry[]): void {
  const names = entries.map((e) => e.name);
  const foreign = names.filter((n) => NATIVE.test(n) && OTHER_PLATFORM.test(n.replace(/^extension\//, '')));
  if (foreign.length) throw new Error(`binaries of other platforms in the VSIX:\n  ${foreign.join('\n  ')}`);
  const missing = REQUIRED_NATIVE.filter((re) => !names.some((n) => re.test(n)));
  if (missing.length) throw new Error(`linux-x64 binaries missing from the VSIX: ${missing.map(String).join(', ')}`);
  for (const f of ['client.js', 'server.js', 'worker.js', 'cli.js', 'webview.js', 'webview.css']) {
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

function main(): void {
  const o = parseArgs(process.argv.slice(2));
  const t0 = Date.now();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vitlens-vsix-stage-'));
  try {
    const dist = o.build ? buildProduction(path.join(dir, 'build')) : path.join(ROOT, 'dist');
    checkBundles(dist);
    const closure = runtimeClosure();
    const ext = path.join(dir, 'extension');
    fs.mkdirSync(ext);
    stage(ext, dist, closure);
    log(`staged ${closure.size} packages (${RUNTIMES.join(', ')} and their dependencies)`);
    const vsce = path.join(ROOT, 'node_modules', '@vscode', 'vsce', 'vsce');
    fs.mkdirSync(path.dirname(o.out), { recursive: true });
    const r = spawnSync(
      process.execPath,
      [
        vsce,
        'package',
        '--target',
        TARGET,
        '--out',
        o.out,
        '--skip-license',
        '--allow-missing-repository',
        '--no-rewrite-relative-links',
        '--no-yarn',
      ],
      { cwd: ext, stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8', timeout: 300_000 },
    );
    // eslint-disable-next-line no-control-regex
    const out = `${r.stdout}${r.stderr}`
      .replace(/\x1b\[[0-9;]*m/g, '')
      .split('\n')
      .filter((l) => l.trim() && !/npm warn Unknown (user|env|project) config/.test(l));
    if (r.status !== 0) throw new Error(`vsce package failed (${r.status ?? r.signal}):\n${out.join('\n')}`);
    for (const l of out) console.log(`  vsce: ${l}`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  const entries = listZip(o.out);
  report(o.out, entries);
  check(entries);
  if (o.smoke) smoke(o.out);
  log(`done in ${formatMs(Date.now() - t0, { unit: 's', decimals: 1 })}`);
}

try {
  main();
} catch (e) {
  console.error(`package-vsix: ${(e as Error).message}`);
  process.exit(1);
}
