/**
 * The one-line summary on the `model:` line, as an inlay hint and as a CodeLens, and the
 * CodeLenses that open the dashboard's benchmark (forward passes or training steps),
 * pseudo-inverse, approximation-quality, inference and gradients views.
 */
import { InlayHintKind, type CodeLens, type InlayHint } from 'vscode-languageserver';
import type { TextDocument } from 'vscode-languageserver-textdocument';
import { Commands } from '../../../protocol/lsp';
import type { AnalyzedDocument } from '../documents';
import type { AttentionKind } from '../../core/models/spec';
import { summaryLine } from '../../core/profile/format';

function anchor(doc: AnalyzedDocument): { start: number; end: number } | null {
  const e = doc.analysis.entries.get('model') ?? doc.analysis.parsed.entries[0];
  return e ? e.span : null;
}

export function inlayHints(doc: AnalyzedDocument, text: TextDocument): InlayHint[] {
  const p = doc.profile();
  const at = anchor(doc);
  if (!p || !at) return [];
  const end = text.positionAt(at.end);
  const lineEnd = text.positionAt(text.offsetAt({ line: end.line + 1, character: 0 }) - 1);
  const pos = lineEnd.line === end.line ? lineEnd : end;
  return [
    {
      position: pos,
      label: `  ${summaryLine(p)}`,
      kind: InlayHintKind.Type,
      paddingLeft: true,
      tooltip:
        'Exact parameter count; multiply–accumulates by convention B (the README convention). Hover `model` for all conventions.',
    },
  ];
}

/** How the inference lens names the model's attention. */
const INFERENCE_NAMES: Record<AttentionKind, string> = {
  soft: 'SOFT',
  soft_norm: 'SOFT-Norm',
  ufo: 'UFO',
  softmax: 'softmax',
  softmax_sr: "PVT softmax (the SOFT paper's Linformer)",
  performer: 'Performer',
  nystrom: 'Nyströmformer',
  linformer: 'Linformer',
};

export function codeLenses(
  doc: AnalyzedDocument,
  text: TextDocument,
  o: { canRun: boolean; trainsAt?: string | null } = { canRun: true },
): CodeLens[] {
  const p = doc.profile();
  const at = anchor(doc);
  if (!at) return [];
  const range = { start: text.positionAt(at.start), end: text.positionAt(at.start) };
  const summary = p ? `ViT Lens: ${summaryLine(p)}` : 'ViT Lens: fix the errors to see the profile';
  const title = p && o.trainsAt ? `${summary} · ${o.trainsAt}` : summary;
  const lenses: CodeLens[] = [{ range, command: { title, command: Commands.showProfile, arguments: [doc.uri] } }];
  const spec = doc.analysis.spec;
  // Running anything needs a config without errors (the server refuses it, naming the line).
  // An untrusted workspace runs no model, so it gets no lens that would.
  if (!p || !spec || !o.canRun || doc.analysis.diagnostics.some((d) => d.severity === 'error')) return lenses;
  lenses.push({ range, command: { title: 'Benchmark attention', command: Commands.benchmark, arguments: [doc.uri] } });
  // The same cases as training steps (forward + backward, + AdamW per the setting): where the benchmark lens is.
  lenses.push({
    range,
    command: { title: 'Benchmark training step', command: Commands.benchmarkTraining, arguments: [doc.uri] },
  });
  // The pinv analysis covers SOFT's Newton–Raphson and Nyströmformer's iteration.
  if (spec.stages.some((s) => s.attention === 'soft' || s.attention === 'soft_norm' || s.attention === 'nystrom')) {
    lenses.push({
      range,
      command: { title: 'Pseudo-inverse convergence', command: Commands.pinv, arguments: [doc.uri] },
    });
  }
  // The approximation analysis measures every stage whose attention has an exact counterpart (all but UFO's).
  if (spec.stages.some((s) => s.attention !== 'ufo')) {
    lenses.push({
      range,
      command: { title: 'Approximation quality', command: Commands.approx, arguments: [doc.uri] },
    });
  }
  // The SOFT pyramid's stage-4 cls block is always softmax; the ViT's one stage names its attention, cls token or not.
  const kind = spec.stages.find((s) => !(spec.family === 'soft' && s.clsToken))?.attention ?? 'softmax';
  lenses.push({
    range,
    command: {
      title: `Run ${INFERENCE_NAMES[kind]} inference on image…`,
      command: Commands.infer,
      arguments: [doc.uri],
    },
  });
  // One training step's gradients need a trained model and an input: a config naming its checkpoint and an image.
  const images = doc.analysis.values.get('images');
  if (
    typeof doc.analysis.values.get('checkpoint') === 'string' &&
    Array.isArray(images) &&
    images.some((i) => typeof i === 'string')
  )
    lenses.push({ range, command: { title: 'Gradients', command: Commands.grad, arguments: [doc.uri] } });
  return lenses;
}
