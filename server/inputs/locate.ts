/**
 * Where the files a config names are: `checkpoint:` and `images:` are written relative to the
 * config's folder. The one place that decides it, so the CLI and the editor resolve a config
 * the same way: a checkpoint not found next to the config is looked for under the user's search
 * folders (the `vitlens.infer.checkpointSearchPaths` setting, the CLI's `--checkpoint-search-path`),
 * by the path as written and then by file name.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ConfigInputs } from '../../protocol/lsp';

/** The file path of a `file:` URI (null for other schemes, e.g. an unsaved editor buffer). */
export function filePathOf(uri: string): string | null {
  try {
    return uri.startsWith('file:') ? fileURLToPath(uri) : null;
  } catch {
    return null;
  }
}

/** The folder a config's relative paths start from: its own, or the working directory when it has none. */
function baseFolder(configFile: string | null): string {
  return configFile ? path.dirname(path.resolve(configFile)) : process.cwd();
}

/** A path as written in the config, made absolute against the config's folder. */
export function resolveNearConfig(configFile: string | null, written: string): string {
  return path.resolve(baseFolder(configFile), written);
}

/** Whether a path written in the config exists, relative to the config (for diagnostics). */
export function fileExistsNear(configFile: string | null): ((written: string) => boolean) | undefined {
  if (!configFile) return undefined;
  return (written) => fs.existsSync(resolveNearConfig(configFile, written));
}

/**
 * A config's checkpoint: next to the config, else under each search folder (by the path as
 * written, then by file name). The first that exists; else the path next to the config, so the
 * error names where it was expected.
 */
export function findCheckpoint(
  configFile: string | null,
  written: string,
  searchPaths: readonly string[] = [],
): string {
  const nearConfig = resolveNearConfig(configFile, written);
  if (fs.existsSync(nearConfig)) return nearConfig;
  for (const dir of searchPaths) {
    for (const candidate of [path.resolve(dir, written), path.join(dir, path.basename(written))]) {
      if (fs.existsSync(candidate)) return candidate;
    }
  }
  return nearConfig;
}

/**
 * The config's `checkpoint:` and `images:` values (from its analysis), resolved as above: the
 * checkpoint is null when the config names none.
 */
export function configInputs(
  configFile: string | null,
  values: ReadonlyMap<string, unknown>,
  searchPaths: readonly string[] = [],
): ConfigInputs {
  const checkpoint = values.get('checkpoint');
  const images = values.get('images');
  return {
    checkpoint: typeof checkpoint === 'string' ? findCheckpoint(configFile, checkpoint, searchPaths) : null,
    images: Array.isArray(images)
      ? images.filter((i): i is string => typeof i === 'string').map((i) => resolveNearConfig(configFile, i))
      : [],
  };
}
