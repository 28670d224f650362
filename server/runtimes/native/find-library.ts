/**
 * Where the dynamic loader would find a shared library, and where it would not look but CUDA
 * libraries usually are. The loader searches LD_LIBRARY_PATH, the asking library's RUNPATH, its
 * cache (`ldconfig -p`) and the system folders; CUDA toolkits (CUDA_PATH, /usr/local/cuda-X.Y) and
 * PyTorch's pip wheels (site-packages/nvidia/*\/lib) keep their libraries elsewhere. A library found
 * only there can still be used, by a process started with its folder on LD_LIBRARY_PATH (the
 * loader reads it once, when a process starts).
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { NativeLibrary } from '../../../protocol/devices';

export interface LibrarySearch {
  env: NodeJS.ProcessEnv;
  /** The asking library's RUNPATH, $ORIGIN already replaced. */
  runpath: string[];
  /** Folders of CUDA libraries the user's PyTorch brought (PyTorchInfo.libraryDirs). */
  pytorchDirs: string[];
  /** soname → path from the loader's cache; read with `ldconfig -p` when omitted. */
  ldCache?: Map<string, string>;
  /** CUDA toolkit roots; when omitted, CUDA_PATH, CUDA_HOME, /usr/local/cuda and each /usr/local/cuda-X.Y. */
  toolkitRoots?: string[];
}

export interface LibrariesFound {
  libraries: NativeLibrary[];
  /** Folders a process must have on LD_LIBRARY_PATH to load the libraries found outside the loader's reach. */
  libraryPath: string[];
}

/** The C/C++ runtime and the loader every Linux binary needs: always there, not worth listing. */
export function isBaseLibrary(soname: string): boolean {
  return /^(ld-linux[-\w.]*|lib(c|m|dl|rt|pthread|gcc_s|stdc\+\+|util|resolv)\.so(\.\d+)*)$/.test(soname);
}

/** Folders the loader searches without being told (glibc's trusted directories). */
const SYSTEM_DIRS = ['/lib', '/usr/lib', '/lib64', '/usr/lib64', '/lib/x86_64-linux-gnu', '/usr/lib/x86_64-linux-gnu'];

const NATIVE_ABI = process.arch === 'arm64' ? 'AArch64' : 'x86-64';

/** The loader's cache as `ldconfig -p` prints it ("libz.so.1 (libc6,x86-64) => /lib/x86_64-linux-gnu/libz.so.1"). */
export function parseLdconfig(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of text.matchAll(/^\s*(\S+)\s+\(([^)]*)\)\s+=>\s+(\S+)\s*$/gm)) {
    // This process's ABI only ("libc6,x86-64"; a bare "libc6" on x86-64 is a 32-bit copy that would not load).
    if (!out.has(m[1]!) && m[2]!.includes(NATIVE_ABI)) out.set(m[1]!, m[3]!);
  }
  return out;
}

let cachedLdCache: Map<string, string> | undefined;

function systemLdCache(): Map<string, string> {
  if (cachedLdCache) return cachedLdCache;
  for (const ldconfig of ['/sbin/ldconfig', '/usr/sbin/ldconfig', 'ldconfig']) {
    const r = spawnSync(ldconfig, ['-p'], { encoding: 'utf8', timeout: 5000 });
    if (r.status === 0) return (cachedLdCache = parseLdconfig(r.stdout));
  }
  return (cachedLdCache = new Map());
}

function split(list: string | undefined): string[] {
  return (list ?? '').split(':').filter(Boolean);
}

/** CUDA toolkit roots: CUDA_PATH / CUDA_HOME, then /usr/local/cuda and every /usr/local/cuda-X.Y, newest first. */
function toolkitRoots(env: NodeJS.ProcessEnv): string[] {
  const roots = [env.CUDA_PATH, env.CUDA_HOME, '/usr/local/cuda'].filter((r): r is string => !!r);
  try {
    for (const name of fs.readdirSync('/usr/local').sort().reverse())
      if (/^cuda-\d/.test(name)) roots.push(path.join('/usr/local', name));
  } catch {
    // no /usr/local: nothing to add
  }
  return roots;
}

/** The library folders of each toolkit root. */
function toolkitDirs(roots: string[]): string[] {
  const arch = process.arch === 'arm64' ? 'sbsa-linux' : 'x86_64-linux';
  return roots.flatMap((r) => [path.join(r, 'lib64'), path.join(r, 'lib'), path.join(r, 'targets', arch, 'lib')]);
}

/** Finds each library, first where the loader looks (in its order), then where CUDA libraries usually are. */
export function findLibraries(sonames: readonly string[], s: LibrarySearch): LibrariesFound {
  const ldCache = s.ldCache ?? systemLdCache();
  const loaderDirs: [NativeLibrary['via'], string[]][] = [
    ['LD_LIBRARY_PATH', split(s.env.LD_LIBRARY_PATH)],
    ['RUNPATH', s.runpath],
  ];
  const extraDirs: [NativeLibrary['via'], string[]][] = [
    ['CUDA toolkit', toolkitDirs(s.toolkitRoots ?? toolkitRoots(s.env))],
    ['PyTorch pip package', s.pytorchDirs],
  ];
  const inDirs = (soname: string, dirs: string[]) => dirs.find((d) => fs.existsSync(path.join(d, soname)));
  const libraryPath: string[] = [];
  const libraries = sonames.map((soname): NativeLibrary => {
    for (const [via, dirs] of loaderDirs) {
      const dir = inDirs(soname, dirs);
      if (dir) return { soname, path: path.join(dir, soname), via };
    }
    const cached = ldCache.get(soname);
    if (cached) return { soname, path: cached, via: 'loader cache' };
    const system = inDirs(soname, SYSTEM_DIRS);
    if (system) return { soname, path: path.join(system, soname), via: 'system' };
    for (const [via, dirs] of extraDirs) {
      const dir = inDirs(soname, dirs);
      if (dir) {
        if (!libraryPath.includes(dir)) libraryPath.push(dir);
        return { soname, path: path.join(dir, soname), via };
      }
    }
    return { soname, path: null, via: null };
  });
  return { libraries, libraryPath };
}
