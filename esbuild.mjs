// One esbuild script, one entry per bundle (the vscode-eslint layout).
import * as esbuild from 'esbuild';

const watch = process.argv.includes('--watch');
const production = process.argv.includes('--production');

/** Node bundles: the VS Code client, the language server, the CLI. */
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
  { ...node, entryPoints: { server: 'server/server.ts' }, outdir: 'dist' },
  { ...node, entryPoints: { cli: 'server/cli.ts' }, outdir: 'dist' },
];

if (watch) {
  for (const b of builds) await (await esbuild.context(b)).watch();
} else {
  await Promise.all(builds.map((b) => esbuild.build(b)));
}
