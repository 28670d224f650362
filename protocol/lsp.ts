/**
 * Every ViT Lens custom LSP request and notification, declared once and imported
 * by the server, the VS Code client and the tests (as rust-analyzer's lsp_ext.ts).
 */
import { RequestType } from 'vscode-languageserver-protocol';
import type { ModelProfileSummary } from './results';

export interface ProfileParams {
  /** Document URI of an open config. */
  uri: string;
  /** Input resolution (square); defaults to the config's first `img_size`. */
  resolution?: number;
  batch?: number;
  /** Include every op (large: thousands for the deep models). */
  ops?: boolean;
}

/** `vitlens/profile`: the profile of an open config (null when the config has errors). */
export const ProfileRequest = new RequestType<ProfileParams, ModelProfileSummary | null, void>('vitlens/profile');

/** Command ids the server's CodeLenses reference; the client registers them. */
export const Commands = {
  showProfile: 'vitlens.showProfile',
} as const;
