// One esbuild script, one entry per bundle (the vscode-eslint layout).
import fs from 'node:fs';
import * as esbuild from 'esbuild';

const watch = process.argv.includes('--watch');
const production = process.argv.includes('--production');

/**
 * Native and self-locating packages stay in node_modules: onnxruntime-node and sharp load .node
 * addons, `webgpu` finds dawn.node next to itself, tfjs-backend-wasm its .wasm file.
 */
const runtimes = ['onnxruntime-node', 'webgpu', '@tensorflow/*', 'sharp'];

/** Node bundles: the VS Code client, the language server, the CLI, the benchmark worker. */
const node = {
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  sourcemap: !production,
  minify: production,
  logLevel: 'info',
};

const builds = [
  { ...node, entryPoints: { client: 'client/extension.ts' }, outdir: 'dist', external: ['vscode'] },
  { ...node, entryPoints: { server: 'server/lsp/server.ts' }, outdir: 'dist', external: runtimes },
  { ...node, entryPoints: { cli: 'server/cli/main.ts' }, outdir: 'dist', external: runtimes },
  { ...node, entryPoints: { worker: 'server/jobs/worker.ts' }, outdir: 'dist', external: runtimes },
  // onnxruntime in a process of its own, started with the CUDA libraries on LD_LIBRARY_PATH.
  { ...node, entryPoints: { 'ort-host': 'server/runtimes/ort/host.ts' }, outdir: 'dist', external: runtimes },
  // The dashboard page (chart.js included): a browser bundle, loaded by the webview panel
  // and inlined into the CLI's HTML report. Emits dist/webview.js and dist/webview.css.
  {
    entryPoints: { webview: 'webview/main.ts' },
    outdir: 'dist',
    bundle: true,
    platform: 'browser',
    format: 'iife',
    target: 'es2022',
    sourcemap: false,
    minify: production,
    logLevel: 'info',
  },
];

// The PyTorch runtime's one Python file travels beside the bundles that start it (server, worker, CLI).
fs.mkdirSync('dist', { recursive: true });
fs.copyFileSync('server/runtimes/torch/vitlens_torch.py', 'dist/vitlens_torch.py');

if (watch) {
  for (const b of builds) await (await esbuild.context(b)).watch();
} else {
  await Promise.all(builds.map((b) => esbuild.build(b)));
}
