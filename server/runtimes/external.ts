/**
 * Loading the runtime packages that stay in node_modules (esbuild.mjs `runtimes`): native ones
 * (onnxruntime-node, `webgpu`'s dawn.node, tfjs-node) find their binaries relative to their own
 * package, so a copy inlined into dist/*.js would not load. Everything here survives esbuild's
 * CJS bundling and works the same under tsx.
 */
import { createRequire } from 'node:module';
import path from 'node:path';

/**
 * A require esbuild does not see: a plain `require('onnxruntime-node')` would be inlined into
 * dist/*.js, and its native binding (found by a path relative to the package) would then not load.
 * Resolving from this file's location finds the extension's node_modules in both tsx and the bundle.
 */
export const runtimeRequire: NodeJS.Require = createRequire(
  typeof __filename === 'string' ? __filename : path.join(process.cwd(), 'index.js'),
);

/** Where `name` resolves to, or undefined when it is not installed. */
export function resolvable(name: string): string | undefined {
  try {
    return runtimeRequire.resolve(name);
  } catch {
    return undefined;
  }
}

/**
 * A dynamic import esbuild cannot see, for ESM-only packages (`webgpu`): TypeScript/esbuild turn
 * `import()` in CJS output into `require()`, which cannot load ESM on node 20; hiding the import
 * in a Function keeps it a real dynamic import. It has no referrer of its own to resolve a bare
 * name from, so pass an absolute file URL.
 */
export const importEsm = new Function('specifier', 'return import(specifier)') as (
  specifier: string,
) => Promise<unknown>;
