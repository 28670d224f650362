/**
 * Finding the user's Python with torch, and what it can run on. The interpreter, in order: the one
 * the user names (the `vitlens.python.path` setting, the CLI's `--python`, or VITLENS_PYTHON),
 * else the one selected in VS Code's Python extension, else `python3` and `python` on PATH, then
 * the system's /usr/bin/python3 (where Debian's python3-torch lives). A named interpreter is the
 * only one tried: if it lacks torch, the report says so rather than quietly using another. Each
 * candidate runs `vitlens_torch.py --probe` (imports torch, lists CUDA/ROCm/MPS devices); nothing
 * is installed anywhere, and a missing or broken torch is a reason in the report, not a failure.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { PyTorchDevice, PyTorchInfo, PythonSource } from '../../../protocol/devices';
import type { RuntimeId } from '../../../protocol/results';
import { errorMessage } from '../../core/errors';
import { torchScriptPath } from './process';

/**
 * Whether a job needs PyTorch probed (importing torch takes seconds): when it asks for a torch
 * runtime, or asks for none and the default list would include one (`byDefault`).
 */
export function wantsPyTorch(requested: readonly RuntimeId[] | null | undefined, byDefault: boolean): boolean {
  return requested && requested.length ? requested.some((r) => r.startsWith('torch-')) : byDefault;
}

export interface PythonChoice {
  /** The interpreter the user named (setting or flag), if any. */
  python?: string | null;
  /** The interpreter selected in VS Code's Python extension, if the client found one. */
  vscodePython?: string | null;
  /** Upper bound for each candidate's probe (importing torch takes seconds). Default 45 s. */
  timeoutMs?: number;
}

interface Candidate {
  executable: string;
  source: PythonSource;
}

/** `name` resolved on PATH, or null. */
function onPath(name: string): string | null {
  const exts = process.platform === 'win32' ? ['.exe', '.cmd', '.bat', ''] : [''];
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    for (const ext of exts) {
      const full = path.join(dir, name + ext);
      try {
        if (fs.statSync(full).isFile()) return full;
      } catch {
        // not here
      }
    }
  }
  return null;
}

export function pythonCandidates(choice: PythonChoice): Candidate[] {
  const named = choice.python || process.env.VITLENS_PYTHON;
  if (named) return [{ executable: named, source: choice.python ? 'setting' : 'env' }];
  const out: Candidate[] = [];
  if (choice.vscodePython) out.push({ executable: choice.vscodePython, source: 'vscode-python' });
  for (const name of ['python3', 'python']) {
    const found = onPath(name);
    if (found) out.push({ executable: found, source: 'PATH' });
  }
  if (process.platform !== 'win32' && fs.existsSync('/usr/bin/python3'))
    out.push({ executable: '/usr/bin/python3', source: 'system' });
  // The same file reached twice (python3 and python, a symlinked system Python) is probed once.
  const seen = new Set<string>();
  return out.filter((c) => {
    let key = c.executable;
    try {
      key = fs.realpathSync(c.executable);
    } catch {
      // keep the name as written
    }
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/** What `vitlens_torch.py --probe` prints. */
interface ProbeLine {
  python: { executable: string; version: string };
  torch: PyTorchInfo['torch'];
  reason?: string;
  devices?: PyTorchDevice[];
  cudaStatus?: PyTorchInfo['cuda'];
  mpsStatus?: PyTorchInfo['mps'];
  libraryDirs?: string[];
}

function probeOne(c: Candidate, timeoutMs: number): Promise<ProbeLine | { error: string }> {
  return new Promise((resolve) => {
    execFile(
      c.executable,
      [torchScriptPath(), '--probe'],
      { timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 1 << 20, windowsHide: true },
      (err, stdout, stderr) => {
        const line = stdout.trim().split('\n').at(-1) ?? '';
        if (line.startsWith('{')) {
          try {
            return resolve(JSON.parse(line) as ProbeLine);
          } catch {
            // fall through to the error
          }
        }
        const timedOut = err && (err as { killed?: boolean }).killed;
        const said = (stderr || '').trim().split('\n').slice(-2).join(' ');
        resolve({
          error: timedOut
            ? `did not finish probing within ${timeoutMs / 1000} s`
            : `could not run it: ${err ? errorMessage(err).split('\n')[0] : 'no answer'}${said ? ` (${said})` : ''}`,
        });
      },
    );
  });
}

const NOT_FOUND: PyTorchInfo = {
  available: false,
  python: null,
  torch: null,
  devices: [],
  cuda: { available: false },
  mps: { available: false },
  tried: [],
  libraryDirs: [],
};

/** A report of no PyTorch, saying why (not probed, disabled). */
export function noPyTorch(reason: string): PyTorchInfo {
  return { ...NOT_FOUND, reason };
}

/** Probes the candidates in order and reports the first with a working torch (or why none has one). */
export async function probePyTorch(choice: PythonChoice = {}): Promise<PyTorchInfo> {
  const candidates = pythonCandidates(choice);
  if (candidates.length === 0)
    return {
      ...NOT_FOUND,
      reason:
        'no Python found (none named by the vitlens.python.path setting, --python or VITLENS_PYTHON, none selected in VS Code’s Python extension, no python3/python on PATH)',
    };
  const tried: PyTorchInfo['tried'] = [];
  let fallback: PyTorchInfo | null = null;
  for (const c of candidates) {
    const r = await probeOne(c, choice.timeoutMs ?? 45_000);
    if ('error' in r) {
      tried.push({ ...c, reason: r.error });
      continue;
    }
    const python = { executable: c.executable, version: r.python.version, source: c.source };
    if (!r.torch) {
      tried.push({ ...c, reason: r.reason ?? 'torch cannot be imported' });
      fallback ??= { ...NOT_FOUND, python, tried };
      continue;
    }
    tried.push({ ...c, reason: null });
    return {
      available: true,
      python,
      torch: r.torch,
      devices: r.devices ?? [],
      cuda: r.cudaStatus ?? { available: false },
      mps: r.mpsStatus ?? { available: false },
      tried,
      libraryDirs: r.libraryDirs ?? [],
    };
  }
  const reason = `no Python with a working torch: ${tried.map((t) => `${t.executable} (${t.source}): ${t.reason}`).join('; ')}`;
  return { ...(fallback ?? NOT_FOUND), tried, reason };
}
