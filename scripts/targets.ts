/**
 * The platforms ViT Lens is packaged for and, per platform, where each native runtime keeps its
 * binaries: read by scripts/package-vsix.ts to fill the .vscodeignore template, stage sharp's
 * platform packages and check the VSIX. The file names were read from the installed packages
 * (onnxruntime-node 1.30, webgpu 0.6) and from the @img tarballs the lock pins (sharp 0.35.5,
 * libvips 1.3.4); the version parts are left open so a dependency update does not need an edit here.
 */
import { describeHeader, mismatch, type BinaryHeader, type BinaryKind } from './native-header';

export const TARGETS = ['linux-x64', 'linux-arm64', 'darwin-arm64', 'win32-x64'] as const;
export type Target = (typeof TARGETS)[number];

export interface TargetFacts {
  /** VS Code's platform name (`vsce package --target`), also `${process.platform}-${process.arch}`. */
  target: Target;
  /** What every native file of this VSIX must be. */
  binary: BinaryKind;
  /** onnxruntime-node: its `bin/napi-v6/<os>/<arch>` folder and the files the binding loads from it. */
  ort: { dir: string; files: string[] };
  /** webgpu (Dawn): its `dist/<folder>`, shipped whole (win32's holds the D3D shader compilers beside dawn.node). */
  dawn: string;
  /** sharp's platform packages: the binding and, apart from win32 where it sits inside, libvips. */
  sharp: string[];
  /** Paths under extension/node_modules/ that must be in the VSIX. */
  required: RegExp[];
}

const V = String.raw`\d+(?:\.\d+)*`; // a version inside a file name

function required(ort: TargetFacts['ort'], dawn: string, sharp: RegExp[]): RegExp[] {
  const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return [
    ...ort.files.map((f) => new RegExp(`^onnxruntime-node/bin/napi-v\\d+/${esc(ort.dir)}/${esc(f)}$`)),
    new RegExp(`^webgpu/dist/${esc(dawn)}/dawn\\.node$`),
    ...sharp,
    // Platform-neutral, in every VSIX: TF.js's wasm backend (one of its three builds at least).
    /^@tensorflow\/tfjs-backend-wasm\/dist\/tfjs-backend-wasm(-simd|-threaded-simd)?\.wasm$/,
  ];
}

function linux(arch: 'x64' | 'arm64'): TargetFacts {
  const ort = { dir: `linux/${arch}`, files: ['onnxruntime_binding.node', 'libonnxruntime.so.1'] };
  const dawn = `linux-${arch}`;
  return {
    target: `linux-${arch}`,
    binary: { format: 'elf', arch },
    ort,
    dawn,
    sharp: [`@img/sharp-linux-${arch}`, `@img/sharp-libvips-linux-${arch}`],
    required: required(ort, dawn, [
      new RegExp(`^@img/sharp-linux-${arch}/lib/sharp-linux-${arch}-${V}\\.node$`),
      new RegExp(`^@img/sharp-libvips-linux-${arch}/lib/libvips-cpp\\.so\\.${V}$`),
    ]),
  };
}

/** Reading the binaries: darwin's binding loads @rpath/libonnxruntime.1.dylib; the package also
 * carries libonnxruntime.1.30.0.dylib, a byte-identical copy (a symlink flattened by npm, 43 MB)
 * that nothing loads, so it is left out. */
const darwinOrt = { dir: 'darwin/arm64', files: ['onnxruntime_binding.node', 'libonnxruntime.1.dylib'] };
/** win32's binding loads onnxruntime.dll; DirectML.dll backs the DirectML EP and dxcompiler/dxil
 * the WebGPU EP's shader compilation on D3D12. */
const win32Ort = {
  dir: 'win32/x64',
  files: ['onnxruntime_binding.node', 'onnxruntime.dll', 'DirectML.dll', 'dxcompiler.dll', 'dxil.dll'],
};

export const TARGET_FACTS: Record<Target, TargetFacts> = {
  'linux-x64': linux('x64'),
  'linux-arm64': linux('arm64'),
  'darwin-arm64': {
    target: 'darwin-arm64',
    binary: { format: 'mach-o', arch: 'arm64' },
    ort: darwinOrt,
    // Dawn ships one universal (x64 + arm64) dawn.node for macOS; `webgpu` loads dist/darwin-universal.
    dawn: 'darwin-universal',
    sharp: ['@img/sharp-darwin-arm64', '@img/sharp-libvips-darwin-arm64'],
    required: required(darwinOrt, 'darwin-universal', [
      new RegExp(`^@img/sharp-darwin-arm64/lib/sharp-darwin-arm64-${V}\\.node$`),
      new RegExp(`^@img/sharp-libvips-darwin-arm64/lib/libvips-cpp\\.${V}\\.dylib$`),
    ]),
  },
  'win32-x64': {
    target: 'win32-x64',
    binary: { format: 'pe', arch: 'x64' },
    ort: win32Ort,
    dawn: 'win32-x64',
    // No @img/sharp-libvips-win32-x64: the binding's package carries libvips-42.dll and libvips-cpp-*.dll.
    sharp: ['@img/sharp-win32-x64'],
    required: required(win32Ort, 'win32-x64', [
      new RegExp(`^@img/sharp-win32-x64/lib/sharp-win32-x64-${V}\\.node$`),
      /^@img\/sharp-win32-x64\/lib\/libvips-42\.dll$/,
      new RegExp(`^@img/sharp-win32-x64/lib/libvips-cpp-${V}\\.dll$`),
      /^webgpu\/dist\/win32-x64\/(d3dcompiler_47|dxcompiler)\.dll$/,
    ]),
  },
};

export function isTarget(t: string): t is Target {
  return (TARGETS as readonly string[]).includes(t);
}

/** This machine's target, when it is one that is packaged (only then can a VSIX be smoke-run here). */
export function hostTarget(): Target | undefined {
  const t = `${process.platform}-${process.arch}`;
  return isTarget(t) ? t : undefined;
}

/**
 * Words in a path that name an OS or CPU. A native file whose path names one the target is not
 * (a linux/arm64 folder in the linux-x64 VSIX) fails the check alongside the header test: the path
 * rule catches a wrong folder even where the binary inside would pass.
 */
const PLATFORM_WORDS = [
  'linux',
  'linuxmusl',
  'musl',
  'alpine',
  'win32',
  'windows',
  'darwin',
  'macos',
  'osx',
  'freebsd',
  'x64',
  'arm64',
  'aarch64',
  'armhf',
  'arm',
  'ia32',
  'ppc64',
  's390x',
  'riscv64',
  'wasm32',
];
const OWN_WORDS: Record<Target, string[]> = {
  'linux-x64': ['linux', 'x64'],
  'linux-arm64': ['linux', 'arm64', 'aarch64'],
  'darwin-arm64': ['darwin', 'macos', 'osx', 'arm64'],
  'win32-x64': ['win32', 'windows', 'x64'],
};

/** Matches a path that names a platform other than `target` (as a whole word between / . _ -). */
export function otherPlatformPattern(target: Target): RegExp {
  const words = PLATFORM_WORDS.filter((w) => !OWN_WORDS[target].includes(w));
  return new RegExp(`(^|[/._-])(${words.join('|')})([/._-]|$)`, 'i');
}

/**
 * Why a VSIX's binaries do not fit `target`, one line per problem (none: it fits): a native file
 * (by header, or by name when its header is not recognised) of another format or architecture,
 * a native file whose path names another platform, or a required binary missing. `files` are the
 * VSIX's binaries (scripts/vsix.ts zipBinaries), `names` all its entries.
 */
export function targetProblems(
  files: { name: string; header: BinaryHeader; nativeName: boolean }[],
  names: string[],
  target: Target,
): string[] {
  const facts = TARGET_FACTS[target];
  const other = otherPlatformPattern(target);
  const problems: string[] = [];
  for (const f of files) {
    const rel = f.name.replace(/^extension\//, '');
    const why = mismatch(f.header, facts.binary, f.nativeName);
    if (why) problems.push(`${rel}: ${why} (target ${target} needs ${facts.binary.format} ${facts.binary.arch})`);
    else if (f.header.format !== 'wasm' && other.test(rel))
      problems.push(`${rel}: ${describeHeader(f.header)} in a folder named for another platform (target ${target})`);
  }
  const modules = names.map((n) => n.replace(/^extension\/node_modules\//, ''));
  for (const re of facts.required)
    if (!modules.some((n) => re.test(n))) problems.push(`missing for ${target}: node_modules/ matching ${re}`);
  return problems;
}

/**
 * The .vscodeignore template with the target's folders filled in. Only pattern lines are filled
 * (comments keep their placeholders); a placeholder left over is an error, not a pattern that
 * silently matches nothing.
 */
export function vscodeignoreFor(template: string, target: Target): string {
  const f = TARGET_FACTS[target];
  const values: Record<string, string> = {
    target,
    ort: f.ort.dir,
    ortFiles: f.ort.files.length === 1 ? f.ort.files[0]! : `{${f.ort.files.join(',')}}`,
    dawn: f.dawn,
  };
  return template
    .split('\n')
    .map((line) => {
      if (line.startsWith('#')) return line;
      const filled = line.replace(/\{\{(\w+)\}\}/g, (m, k: string) => {
        if (!(k in values)) throw new Error(`.vscodeignore: unknown placeholder ${m}`);
        return values[k]!;
      });
      if (filled.includes('{{')) throw new Error(`.vscodeignore: unfilled placeholder in ${line}`);
      return filled;
    })
    .join('\n');
}
