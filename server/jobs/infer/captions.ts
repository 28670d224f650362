/**
 * How an inference result is put into words for a person: the attention map's query, and the
 * caption of the overlay shown in the hover of a config's `images:` entry. One wording, so the
 * CLI's text output and the editor say the same thing.
 */
import type { AttentionMap, InferItem, InferReport } from '../../../protocol/infer';

/** The token a map's query is: the cls token, or a grid position. */
export function queryText(query: AttentionMap['query']): string {
  return query === 'cls' ? 'the cls token' : `token (${query.row}, ${query.col})`;
}

/** Markdown caption of an image's first overlay (top-1 class, stage, attention, query), or null when it has none. */
export function overlayCaption(report: Pick<InferReport, 'model' | 'weights'>, item: InferItem): string | null {
  const first = item.maps[0];
  const top = item.top5[0];
  if (!item.overlayImage || !first || !top) return null;
  return `${report.model}, ${report.weights}: top-1 **${top.label}** (${(top.probability * 100).toFixed(1)} %). Overlay: stage ${first.stage} ${first.attention} attention from ${queryText(first.query)}, mean over heads — ${first.meaning}.`;
}
