/** Config diagnostics → LSP diagnostics. */
import { DiagnosticSeverity, type Diagnostic } from 'vscode-languageserver';
import type { TextDocument } from 'vscode-languageserver-textdocument';
import type { ConfigAnalysis } from '../../core/config/analyze';
import type { Severity } from '../../core/config/values';

const SEVERITY: Record<Severity, DiagnosticSeverity> = {
  error: DiagnosticSeverity.Error,
  warning: DiagnosticSeverity.Warning,
  information: DiagnosticSeverity.Information,
  hint: DiagnosticSeverity.Hint,
};

export function toLspDiagnostics(analysis: ConfigAnalysis, doc: TextDocument): Diagnostic[] {
  return analysis.diagnostics.map((d) => ({
    range: { start: doc.positionAt(d.span.start), end: doc.positionAt(Math.max(d.span.end, d.span.start)) },
    severity: SEVERITY[d.severity],
    code: d.code,
    source: 'vitlens',
    message: d.message,
  }));
}
