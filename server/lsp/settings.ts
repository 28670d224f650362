/**
 * The user's `vitlens.*` settings, read through workspace/configuration when the client offers
 * it (VS Code does; an editor that does not gets the defaults).
 */
import type { Connection, InitializeParams } from 'vscode-languageserver/node';
import { DEFAULT_SETTINGS, type VitlensSettings } from '../../protocol/lsp';
import type { PythonChoice } from '../runtimes/torch/python';

/** The defaults with what the user set on top, group by group. */
export function mergeSettings(got: Partial<VitlensSettings> | null | undefined): VitlensSettings {
  return {
    bench: { ...DEFAULT_SETTINGS.bench, ...got?.bench },
    infer: { ...DEFAULT_SETTINGS.infer, ...got?.infer },
    python: { ...DEFAULT_SETTINGS.python, ...got?.python },
    // A string the user wrote ("80GiB"); anything else (unset, null, a bare number) is left to the parser to explain.
    gpuMemory:
      typeof got?.gpuMemory === 'string'
        ? got.gpuMemory.trim() || null
        : got?.gpuMemory != null
          ? String(got.gpuMemory)
          : null,
  };
}

export class Settings {
  /** Whether the client answers workspace/configuration. */
  private canRead = false;
  /** The interpreter VS Code's Python extension has selected, as the client last said. */
  private vscodePython: string | null = null;

  constructor(private readonly connection: Connection) {}

  /** The client's capabilities, at initialize. */
  initialize(params: InitializeParams): void {
    this.canRead = params.capabilities.workspace?.configuration === true;
  }

  /** The client told us which interpreter VS Code's Python extension uses. */
  setVscodePython(executable: string | null): void {
    this.vscodePython = executable;
  }

  /** Which Python runs PyTorch for a document's jobs: the setting, else the Python extension's. */
  async python(uri: string | null): Promise<PythonChoice> {
    const named = (await this.get(uri)).python.path;
    return { python: named || null, vscodePython: this.vscodePython };
  }

  /** The settings for a document (its folder's, in a multi-root workspace), or the defaults. */
  async get(uri: string | null): Promise<VitlensSettings> {
    if (!this.canRead) return DEFAULT_SETTINGS;
    const got = (await this.connection.workspace.getConfiguration({
      section: 'vitlens',
      ...(uri ? { scopeUri: uri } : {}),
    })) as Partial<VitlensSettings> | null;
    return mergeSettings(got);
  }
}
