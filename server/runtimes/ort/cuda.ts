/**
 * onnxruntime's CUDA execution provider, when it is there: its provider library (which
 * onnxruntime-node's installer downloads from NuGet into the package's bin folder; ViT Lens never
 * downloads it), the CUDA, cuBLAS, cuFFT, cuRAND and cuDNN libraries it needs, and where each one
 * is. The dynamic loader finds a library only on LD_LIBRARY_PATH, the provider's RUNPATH, its cache
 * and the system folders; CUDA toolkits (CUDA_PATH, /usr/local/cuda) and PyTorch's pip wheels
 * (site-packages/nvidia/*\/lib) keep theirs elsewhere, and LD_LIBRARY_PATH is read only when a
 * process starts, so the provider runs in a child started with those folders on it (child-runner.ts).
 */
import fs from 'node:fs';
import path from 'node:path';
import type { OrtCudaInfo } from '../../../protocol/devices';
import { readElfDynamic } from '../native/elf-needed';
import { findLibraries, isBaseLibrary, type LibrariesFound, type LibrarySearch } from '../native/find-library';

/**
 * What onnxruntime-node's CUDA 12 build of the provider needs beyond the C and C++ runtimes, used to
 * say what is present while the provider library itself is absent (present, its own list is read).
 */
export const CUDA12_PROVIDER_NEEDS = [
  'libcudart.so.12',
  'libcublas.so.12',
  'libcublasLt.so.12',
  'libcufft.so.11',
  'libcurand.so.10',
  'libcudnn.so.9',
];

export interface CudaSearch extends Omit<LibrarySearch, 'runpath'> {
  /** The provider library, or null when it is not installed. */
  providerFile: string | null;
}

/** Where onnxruntime-node's installer puts a downloaded provider (its script/install.js BIN_FOLDER). */
export function ortProviderFile(ortPackageDir: string, name: string): string {
  const dir = path.join(ortPackageDir, 'bin', 'napi-v6', process.platform, process.arch);
  const file =
    process.platform === 'win32'
      ? `onnxruntime_providers_${name}.dll`
      : `libonnxruntime_providers_${name}.${process.platform === 'darwin' ? 'dylib' : 'so'}`;
  return path.join(dir, file);
}

/** Finds each library the provider needs (its own list when installed) and the folders a child must add. */
export function findCudaLibraries(s: CudaSearch): LibrariesFound {
  const dynamic = s.providerFile ? readElfDynamic(s.providerFile) : null;
  const needed = (dynamic?.needed ?? CUDA12_PROVIDER_NEEDS).filter((n) => !isBaseLibrary(n));
  const origin = s.providerFile ? path.dirname(s.providerFile) : null;
  const runpath = (dynamic?.runpath ?? []).map((p) => (origin ? p.replace(/\$\{?ORIGIN\}?/, origin) : p));
  return findLibraries(needed, { ...s, runpath });
}

const HOW_TO_INSTALL =
  "onnxruntime-node's installer downloads it from api.nuget.org at npm-install time, and ViT Lens's package.json denies that script so installs never download. On a machine with network and CUDA 12 + cuDNN 9, fetch it once with `ONNXRUNTIME_NODE_INSTALL=cuda12 node node_modules/onnxruntime-node/script/install.js` in a ViT Lens checkout; on a GPU machine the user's PyTorch (torch-cuda) needs nothing downloaded";

/** The CUDA EP's state here: installed or not, each library found or missing, and what that means. */
export function probeOrtCuda(ortPackageDir: string, s: Omit<CudaSearch, 'providerFile'>): OrtCudaInfo {
  if (process.platform !== 'linux' && process.platform !== 'win32') {
    return {
      providerLibrary: null,
      libraries: [],
      libraryPath: [],
      usable: false,
      reason: `onnxruntime has no CUDA EP for ${process.platform}`,
    };
  }
  const file = ortProviderFile(ortPackageDir, 'cuda');
  const providerFile = fs.existsSync(file) ? file : null;
  if (process.platform === 'win32') {
    // Windows finds DLLs through PATH; the check below reads ELF only.
    return {
      providerLibrary: providerFile,
      libraries: [],
      libraryPath: [],
      usable: false,
      reason: providerFile
        ? 'installed; ViT Lens runs the CUDA EP on Linux only so far'
        : `not installed: ${HOW_TO_INSTALL}`,
    };
  }
  const { libraries, libraryPath } = findCudaLibraries({ ...s, providerFile });
  const missing = libraries.filter((l) => !l.path).map((l) => l.soname);
  // A CUDA 13 machine (PyTorch's cu13 wheels, a CUDA 13 toolkit) has none of the CUDA 12 sonames.
  const cuda13 =
    missing.includes('libcudart.so.12') && findLibraries(['libcudart.so.13'], { ...s, runpath: [] }).libraries[0]!.path;
  const cuda13Note = cuda13
    ? `; this machine has CUDA 13 (${cuda13}), and onnxruntime-node offers its CUDA EP for CUDA 12 only (its install-metadata.js), so here the GPU runtimes are ort-webgpu and torch-cuda`
    : '';
  if (!providerFile) {
    const found = libraries.filter((l) => l.path).length;
    return {
      providerLibrary: null,
      libraries,
      libraryPath,
      usable: false,
      reason: `not installed: ${HOW_TO_INSTALL}. Of the CUDA 12 libraries it would need, ${found} of ${libraries.length} are here${missing.length ? ` (missing: ${missing.join(', ')})` : ''}${cuda13Note}`,
    };
  }
  if (missing.length > 0) {
    return {
      providerLibrary: providerFile,
      libraries,
      libraryPath,
      usable: false,
      reason: `installed, but ${missing.join(', ')} ${missing.length === 1 ? 'is' : 'are'} nowhere the loader, CUDA_PATH, /usr/local/cuda or the PyTorch pip packages (nvidia-*-cu12) would give it: install the CUDA 12 runtime with cuBLAS, cuFFT, cuRAND and cuDNN 9, or point LD_LIBRARY_PATH at them${cuda13Note}`,
    };
  }
  return { providerLibrary: providerFile, libraries, libraryPath, usable: true };
}
