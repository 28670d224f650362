/**
 * The layout is the architecture, so it is checked like behaviour: a walker over every import of
 * the product's TypeScript (client/, server/, protocol/, webview/) asserts
 * - no import cycle anywhere (type-only imports count: a cycle of types is still a tangle);
 * - `protocol/` imports nothing of ours outside itself and no Node module (the page bundle and
 *   the client load it too); `webview/` is browser code importing only `protocol/` and itself;
 *   `client/` imports only `protocol/` and itself;
 * - inside `server/`, data flows one way through the layers of LAYERS below, and `server/core/`
 *   loads no runtime package (onnxruntime, Dawn, TF.js, sharp: those are `server/runtimes/`'s).
 * The walker's own extraction is checked first, on sources written for it, so a walker that
 * finds nothing cannot pass the real checks by accident.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { ROOT } from './helpers/fixtures';

/** Server folders by layer: a file may import its own layer's folder or a lower layer, never a higher one or a sibling. */
const LAYERS: readonly (readonly string[])[] = [
  ['server/core'],
  ['server/runtimes', 'server/inputs'],
  ['server/jobs'],
  ['server/report'],
  ['server/lsp', 'server/cli'],
];

/** Packages that load native code or a runtime at import: only `server/runtimes/` (and the programs above it) may load them. */
const RUNTIME_PACKAGES = /^(onnxruntime-node|webgpu|@tensorflow\/|sharp$)/;

interface ImportRef {
  specifier: string;
  typeOnly: boolean;
}

/** Comments removed (strings kept), so an import written in a comment is not an import. */
function stripComments(source: string): string {
  return source.replace(/\/\*[\s\S]*?\*\/|(^|[^:\\'"`])\/\/.*$/gm, (_m, lead: string | undefined) => lead ?? '');
}

/** Every module specifier a source file imports or re-exports, static or dynamic. */
export function importsOf(source: string): ImportRef[] {
  const text = stripComments(source);
  const refs: ImportRef[] = [];
  const staticRe = /^\s*(import|export)\s+(type\s+)?(?:[^'";]*?\s+from\s+)?['"]([^'"]+)['"]/gm;
  for (const m of text.matchAll(staticRe)) refs.push({ specifier: m[3]!, typeOnly: Boolean(m[2]) });
  for (const m of text.matchAll(/\b(?:import|require)\(\s*['"]([^'"]+)['"]\s*\)/g))
    refs.push({ specifier: m[1]!, typeOnly: false });
  return refs;
}

const SOURCE_ROOTS = ['client', 'server', 'protocol', 'webview'];

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(path.join(ROOT, dir), { withFileTypes: true }).flatMap((e) => {
    const rel = path.posix.join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(rel);
    return /\.ts$/.test(e.name) && !e.name.endsWith('.d.ts') ? [rel] : [];
  });
}

/** A relative specifier resolved to a repository path (with its extension), or null when it leaves the tree we walk. */
function resolveRelative(from: string, specifier: string): string {
  const base = path.posix.normalize(path.posix.join(path.posix.dirname(from), specifier));
  for (const candidate of [base, `${base}.ts`, `${base}/index.ts`]) {
    const abs = path.join(ROOT, candidate);
    if (fs.existsSync(abs) && fs.statSync(abs).isFile()) return candidate;
  }
  throw new Error(`${from}: cannot resolve import '${specifier}'`);
}

interface Edge {
  to: string;
  typeOnly: boolean;
}

function importGraph(): { files: string[]; local: Map<string, Edge[]>; packages: Map<string, ImportRef[]> } {
  const files = SOURCE_ROOTS.flatMap(sourceFiles);
  const local = new Map<string, Edge[]>();
  const packages = new Map<string, ImportRef[]>();
  for (const file of files) {
    const refs = importsOf(fs.readFileSync(path.join(ROOT, file), 'utf8'));
    local.set(
      file,
      refs
        .filter((r) => r.specifier.startsWith('.'))
        .map((r) => ({ to: resolveRelative(file, r.specifier), typeOnly: r.typeOnly })),
    );
    packages.set(
      file,
      refs.filter((r) => !r.specifier.startsWith('.')),
    );
  }
  return { files, local, packages };
}

/** Strongly connected components with more than one file, or a file importing itself (Tarjan). */
export function cyclesOf(graph: ReadonlyMap<string, readonly string[]>): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const cycles: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, next);
    low.set(v, next);
    next++;
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1 || (graph.get(v) ?? []).includes(v)) cycles.push(component.sort());
    }
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return cycles;
}

const layerOf = (file: string): number => LAYERS.findIndex((folders) => folders.some((f) => file.startsWith(`${f}/`)));
const folderOf = (file: string): string | undefined => LAYERS.flat().find((f) => file.startsWith(`${f}/`));

describe('the import walker itself', () => {
  it('finds static, type-only, re-exported and dynamic imports, and none in comments', () => {
    const refs = importsOf(
      [
        "import fs from 'node:fs';",
        "import type { A } from './a';",
        "import {\n  b,\n  type C,\n} from '../b';",
        "export { d } from './d';",
        "export type { E } from './e';",
        "import './side-effect';",
        "const f = await import('./f');",
        "const g = require('./g');",
        "// import { h } from './h';",
        "/* import { i } from './i'; */",
        "const url = 'https://example.org/x'; // not an import",
      ].join('\n'),
    );
    assert.deepEqual(refs, [
      { specifier: 'node:fs', typeOnly: false },
      { specifier: './a', typeOnly: true },
      { specifier: '../b', typeOnly: false },
      { specifier: './d', typeOnly: false },
      { specifier: './e', typeOnly: true },
      { specifier: './side-effect', typeOnly: false },
      { specifier: './f', typeOnly: false },
      { specifier: './g', typeOnly: false },
    ]);
  });

  it('finds a cycle of three and a self-import, and nothing in a chain', () => {
    const graph = new Map([
      ['a', ['b']],
      ['b', ['c']],
      ['c', ['a', 'd']],
      ['d', []],
      ['e', ['e']],
      ['f', ['d']],
    ]);
    assert.deepEqual(cyclesOf(graph), [['a', 'b', 'c'], ['e']]);
    assert.deepEqual(
      cyclesOf(
        new Map([
          ['x', ['y']],
          ['y', ['z']],
          ['z', []],
        ]),
      ),
      [],
    );
  });
});

describe('import boundaries of the product', () => {
  const { files, local, packages } = importGraph();
  /** `node:` modules imported by the files under `prefix`, as "file: module". */
  const nodeImports = (prefix: string) =>
    files
      .filter((f) => f.startsWith(prefix))
      .flatMap((f) =>
        packages
          .get(f)!
          .filter((r) => r.specifier.startsWith('node:'))
          .map((r) => `${f}: ${r.specifier}`),
      );
  const edges = (prefix: string) =>
    files.filter((f) => f.startsWith(prefix)).flatMap((f) => local.get(f)!.map((e) => ({ from: f, ...e })));

  it('walks every source folder and sees their imports', () => {
    for (const root of SOURCE_ROOTS)
      assert.ok(
        files.some((f) => f.startsWith(`${root}/`)),
        `no files under ${root}/`,
      );
    assert.ok([...local.values()].flat().length > 300, 'the walker found implausibly few imports');
  });

  it('has no import cycle', () => {
    const graph = new Map([...local].map(([file, es]) => [file, es.map((e) => e.to)]));
    assert.deepEqual(cyclesOf(graph), []);
  });

  it('protocol/ imports nothing of ours outside protocol/ and no Node module', () => {
    assert.deepEqual(
      edges('protocol/').filter((e) => !e.to.startsWith('protocol/')),
      [],
    );
    assert.deepEqual(nodeImports('protocol/'), []);
  });

  it('webview/ imports only protocol/ and itself, and no Node module', () => {
    assert.deepEqual(
      edges('webview/').filter((e) => !e.to.startsWith('webview/') && !e.to.startsWith('protocol/')),
      [],
    );
    assert.deepEqual(nodeImports('webview/'), []);
  });

  it('client/ imports only protocol/ and itself', () => {
    assert.deepEqual(
      edges('client/').filter((e) => !e.to.startsWith('client/') && !e.to.startsWith('protocol/')),
      [],
    );
  });

  it('every server file sits in a layer, and imports flow down the layers only', () => {
    assert.deepEqual(
      files.filter((f) => f.startsWith('server/') && layerOf(f) < 0),
      [],
      'server files outside the layers',
    );
    const upward = edges('server/')
      .filter((e) => e.to.startsWith('server/'))
      .filter((e) => {
        const from = layerOf(e.from);
        const to = layerOf(e.to);
        return to > from || (to === from && folderOf(e.to) !== folderOf(e.from));
      })
      .map((e) => `${e.from} -> ${e.to}`);
    assert.deepEqual(upward, []);
    assert.deepEqual(
      edges('server/')
        .filter((e) => !/^(server|protocol)\//.test(e.to) && !e.to.endsWith('package.json'))
        .map((e) => `${e.from} -> ${e.to}`),
      [],
    );
  });

  it('server/core/ loads no runtime package (type-only imports allowed)', () => {
    const loads = files
      .filter((f) => f.startsWith('server/core/'))
      .flatMap((f) =>
        packages
          .get(f)!
          .filter((r) => !r.typeOnly && RUNTIME_PACKAGES.test(r.specifier))
          .map((r) => `${f}: ${r.specifier}`),
      );
    assert.deepEqual(loads, []);
  });
});
