/**
 * Hover: what a key means; on `model` and `img_size`, the architecture and its cost; on an
 * `images:` entry, that image with its latest attention overlay (when it has been run).
 */
import type { Hover, Position } from 'vscode-languageserver';
import type { TextDocument } from 'vscode-languageserver-textdocument';
import { formatMacs } from '../../../protocol/format';
import type { AnalyzedDocument } from '../documents';
import { keyDef } from '../../core/config/format';
import type { ConfigValue } from '../../core/config/parse';
import { modelMarkdown } from './markdown';

function contains(span: { start: number; end: number }, offset: number): boolean {
  return offset >= span.start && offset <= span.end;
}

function itemAt(v: ConfigValue, offset: number): number {
  return v.kind === 'list' ? v.items.findIndex((i) => contains(i.span, offset)) : -1;
}

/** The latest inference of an image (by absolute path), as the server remembers it. */
export interface ImageResult {
  overlayImage: string;
  caption: string;
}

export function hover(
  doc: AnalyzedDocument,
  text: TextDocument,
  position: Position,
  imageResult: (relativePath: string) => ImageResult | undefined = () => undefined,
  /** The training-memory paragraph for the `model` hover (features/training.ts), when the setting asks for it. */
  training: string | null = null,
): Hover | null {
  const offset = text.offsetAt(position);
  const entry = doc.analysis.parsed.entries.find((e) => contains(e.span, offset));
  if (!entry) return null;
  const range = { start: text.positionAt(entry.span.start), end: text.positionAt(entry.span.end) };
  const def = keyDef(entry.key);
  if (!def) return null;
  const spec = doc.analysis.spec;
  const parts: string[] = [`**\`${def.key}\`** — ${def.summary}`];
  if (def.details) parts.push(def.details);
  if (def.default) parts.push(`Default: \`${def.default}\`.`);

  if (spec && def.key === 'model') {
    const p = doc.profile();
    if (p) {
      const value = training ? `${modelMarkdown(spec, p)}\n\n${training}` : modelMarkdown(spec, p);
      return { contents: { kind: 'markdown', value }, range };
    }
  }
  if (spec && def.key === 'img_size') {
    const i = itemAt(entry.value, offset);
    const res = spec.resolutions[i >= 0 ? i : 0]!;
    const p = doc.profile(res);
    if (p) parts.push(modelMarkdown(spec, p));
  }
  if (spec && ['embed_dims', 'depths', 'num_heads', 'sr_ratios', 'mlp_ratios', 'attention'].includes(def.key)) {
    const p = doc.profile();
    const lines = spec.stages.map((s) => {
      const st = p?.stages.find((x) => x.stage === s.index);
      const lm = st?.landmarks != null ? `, ${st.landmarks} landmarks` : '';
      // A fixed landmark grid (vit_paper_fig1b) sets the landmark strides from the grid, not from r.
      const fixed = s.landmarkGrid ? ` (landmarks: fixed ${s.landmarkGrid}×${s.landmarkGrid} grid)` : '';
      return `- stage ${s.index}: ${s.attention}, D=${s.dim}, ${s.heads} heads of ${s.headDim}, depth ${s.depth}, FFN ${s.mlpHidden}, r=${s.srRatio}${fixed}${st ? `, ${st.tokens} tokens${lm}` : ''}`;
    });
    parts.push(`Resolved (${spec.name} @${spec.resolutions[0]}):\n${lines.join('\n')}`);
  }
  if (def.key === 'images' && entry.value.kind === 'list') {
    const item = entry.value.items[itemAt(entry.value, offset)];
    const file = item?.kind === 'scalar' ? item.value : undefined;
    if (typeof file === 'string') {
      const result = imageResult(file);
      parts.push(
        result
          ? `![attention overlay on ${file}](${result.overlayImage})\n\n${result.caption}`
          : `\`${file}\`: no inference yet in this session. Run the inference CodeLens on this config to see its predictions and attention overlay here.`,
      );
    }
  }
  if (spec && def.key === 'newton_maxiter') {
    const p = doc.profile();
    if (p)
      parts.push(
        `At ${p.resolution}×${p.resolution}: ${formatMacs(p.macsByCategory.matmul_newton, { prefix: 'G', decimals: 3 })} in Newton iterations (variant ${spec.newton.variant}), ${((100 * p.macsByCategory.matmul_newton) / p.macsByConvention.E).toFixed(1)} % of all MACs (convention E).`,
      );
  }
  return { contents: { kind: 'markdown', value: parts.join('\n\n') }, range };
}
