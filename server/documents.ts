/**
 * Per-document analysis cache: a config is parsed and analysed once per version,
 * profiles are computed lazily per (resolution, batch) and kept with it.
 */
import path from 'node:path';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { analyzeConfig, type ConfigAnalysis } from './config/analyze';
import { isViTLensConfig } from './config/detect';
import { profileModel, type ModelProfile } from './profile/profile';

export interface AnalyzedDocument {
  uri: string;
  version: number;
  isConfig: boolean;
  analysis: ConfigAnalysis;
  profile(resolution?: number, batch?: number): ModelProfile | null;
}

export function filePathOf(uri: string): string | null {
  try {
    return uri.startsWith('file:') ? fileURLToPath(uri) : null;
  } catch {
    return null;
  }
}

/** Resolves paths named in a config against the config's folder. */
export function fileExistsNear(configPath: string | null): ((p: string) => boolean) | undefined {
  if (!configPath) return undefined;
  const dir = path.dirname(configPath);
  return (p) => fs.existsSync(path.resolve(dir, p));
}

export function analyzeDocument(uri: string, version: number, text: string): AnalyzedDocument {
  const file = filePathOf(uri);
  const opts = fileExistsNear(file);
  const analysis = analyzeConfig(text, opts ? { fileExists: opts } : {});
  const cache = new Map<string, ModelProfile>();
  return {
    uri,
    version,
    isConfig: isViTLensConfig(file ?? uri, analysis.parsed),
    analysis,
    profile(resolution, batch = 1) {
      const spec = analysis.spec;
      if (!spec) return null;
      const res = resolution ?? spec.resolutions[0]!;
      const key = `${res}x${batch}`;
      let p = cache.get(key);
      if (!p) cache.set(key, (p = profileModel(spec, res, batch)));
      return p;
    },
  };
}

export class DocumentStore {
  private readonly docs = new Map<string, AnalyzedDocument>();

  update(uri: string, version: number, text: string): AnalyzedDocument {
    const cur = this.docs.get(uri);
    if (cur && cur.version === version) return cur;
    const doc = analyzeDocument(uri, version, text);
    this.docs.set(uri, doc);
    return doc;
  }

  get(uri: string): AnalyzedDocument | undefined {
    return this.docs.get(uri);
  }

  delete(uri: string): void {
    this.docs.delete(uri);
  }
}
