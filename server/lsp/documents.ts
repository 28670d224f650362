/**
 * Per-document analysis cache: a config is parsed and analysed once per version,
 * profiles are computed lazily per (resolution, batch) and kept with it, bounded by blocks.
 */
import { analyzeConfig, type ConfigAnalysis } from '../core/config/analyze';
import { isViTLensConfig } from '../core/config/detect';
import { fileExistsNear, filePathOf } from '../inputs/locate';
import type { ModelSpec } from '../core/models/spec';
import { profileModel, type ModelProfile } from '../core/profile/profile';
import { WeightedLru } from './weighted-lru';

export interface AnalyzedDocument {
  uri: string;
  version: number;
  isConfig: boolean;
  analysis: ConfigAnalysis;
  profile(resolution?: number, batch?: number): ModelProfile | null;
}

/**
 * Profiles shared by every document and version, keyed by the model spec itself: most edits
 * (comments, training keys such as `lr`) leave the architecture as it was, and the profile is
 * the largest part of the work per version (~0.2 ms of ~0.35 ms for an official config).
 * A profile holds every op of every block (~9 KB per block; a 4,000-block model's is 35 MiB),
 * so the cache is bounded by blocks, least recently used out first: 512 blocks in all (~4.5 MiB;
 * the seven official SOFT configs together have 251), and a model of more than 128 blocks is not
 * shared at all. Profiles are never mutated by their readers.
 */
const SHARED_PROFILE_BLOCKS = 512;
const MAX_SHARED_MODEL_BLOCKS = 128;
const sharedProfiles = new WeightedLru<string, ModelProfile>(SHARED_PROFILE_BLOCKS);
/**
 * What one document version keeps of its own profiles (one per resolution and batch asked for):
 * 2,048 blocks (~18 MiB), the newest always. An official config (8–60 blocks) keeps 34 resolutions
 * or more; a fuzzed 4,000-block model keeps only its latest instead of 35 MiB per resolution.
 */
const DOCUMENT_PROFILE_BLOCKS = 2048;

function blockCount(spec: ModelSpec): number {
  return spec.stages.reduce((n, s) => n + s.depth, 0) + spec.classAttentionLayers;
}

function cachedProfile(spec: ModelSpec, blocks: number, resolution: number, batch: number): ModelProfile {
  if (blocks > MAX_SHARED_MODEL_BLOCKS) return profileModel(spec, resolution, batch);
  const key = `${resolution}x${batch} ${JSON.stringify(spec)}`;
  const hit = sharedProfiles.get(key);
  if (hit) return hit;
  const profile = profileModel(spec, resolution, batch);
  sharedProfiles.set(key, profile, blocks);
  return profile;
}

export function analyzeDocument(uri: string, version: number, text: string): AnalyzedDocument {
  const file = filePathOf(uri);
  const opts = fileExistsNear(file);
  const analysis = analyzeConfig(text, opts ? { fileExists: opts } : {});
  const cache = new WeightedLru<string, ModelProfile>(DOCUMENT_PROFILE_BLOCKS);
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
      if (!p) {
        const blocks = blockCount(spec);
        cache.set(key, (p = cachedProfile(spec, blocks, res, batch)), blocks);
      }
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
