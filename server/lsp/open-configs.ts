/**
 * The open documents the server treats as ViT Lens configs: each one's analysis (per version,
 * from the DocumentStore), its model spec for the requests that run it, and the files it names.
 */
import { ErrorCodes, ResponseError, type TextDocuments } from 'vscode-languageserver/node';
import type { TextDocument } from 'vscode-languageserver-textdocument';
import type { ConfigInputs } from '../../protocol/lsp';
import type { ModelSpec } from '../core/models/spec';
import { configInputs, filePathOf } from '../inputs/locate';
import { DocumentStore, type AnalyzedDocument } from './documents';

export interface OpenConfig {
  doc: AnalyzedDocument;
  text: TextDocument;
}

export class OpenConfigs {
  private readonly store = new DocumentStore();

  constructor(private readonly documents: TextDocuments<TextDocument>) {}

  /** The analysis of an open document's current version; null when it is not open or not a config. */
  analyzed(uri: string): OpenConfig | null {
    const text = this.documents.get(uri);
    if (!text) return null;
    const doc = this.store.update(uri, text.version, text.getText());
    return doc.isConfig ? { doc, text } : null;
  }

  /** The ModelSpec of an open config, or a ResponseError that says what is wrong and where. */
  spec(uri: string): ModelSpec {
    const a = this.analyzed(uri);
    if (!a) throw new ResponseError(ErrorCodes.InvalidParams, `${uri} is not an open ViT Lens config`);
    const errors = a.doc.analysis.diagnostics.filter((d) => d.severity === 'error');
    if (errors.length || !a.doc.analysis.spec) {
      const first = errors[0];
      const where = first ? `line ${a.text.positionAt(first.span.start).line + 1}: ${first.message}` : 'no model';
      throw new ResponseError(
        ErrorCodes.InvalidParams,
        `${uri} has ${errors.length} error(s); fix them first (${where})`,
      );
    }
    return a.doc.analysis.spec;
  }

  /**
   * The checkpoint and images an open config names, resolved against it (the one resolution the
   * CLI uses too), the checkpoint also under `searchPaths`; null when it is not an open config.
   */
  inputs(uri: string, searchPaths: readonly string[]): ConfigInputs | null {
    const a = this.analyzed(uri);
    return a ? configInputs(filePathOf(uri), a.doc.analysis.values, searchPaths) : null;
  }

  /** A closed document's analysis is dropped. */
  forget(uri: string): void {
    this.store.delete(uri);
  }
}
