/**
 * Which YAML documents are ViT Lens configs. The server must not claim every YAML
 * file in a workspace (CI files, docker-compose …): a document is a config when its
 * name says so or when its top-level keys are SOFT/ViT Lens ones.
 */
import { MODEL_NAMES } from '../models/registry';
import type { ParsedConfig } from './parse';

const NAME_PATTERNS = [/(^|[/\\])SOFT_[^/\\]*\.ya?ml$/i, /\.vitlens\.ya?ml$/i, /(^|[/\\])vitlens[^/\\]*\.ya?ml$/i];
const DISTINCTIVE_KEYS = new Set(['newton_maxiter', 'kernel_method', 'newton_variant', 'sr_ratios', 'embed_dims']);

export function isConfigByName(path: string): boolean {
  return NAME_PATTERNS.some((p) => p.test(path));
}

export function isViTLensConfig(path: string, parsed: ParsedConfig): boolean {
  if (isConfigByName(path)) return true;
  for (const e of parsed.entries) {
    if (DISTINCTIVE_KEYS.has(e.key)) return true;
    if (e.key === 'model' && e.value.kind === 'scalar' && typeof e.value.value === 'string') {
      const v = e.value.value;
      if (MODEL_NAMES.includes(v) || /^(soft|ufo)[_-]/i.test(v)) return true;
    }
  }
  return false;
}
