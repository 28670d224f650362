/**
 * Workspace trust: an untrusted workspace gets profiles and diagnostics but runs no model
 * (its configs and checkpoints are not the user's yet). Editors other than VS Code do not
 * send it and are trusted, as is the CLI.
 */
import { ErrorCodes, ResponseError, type Connection, type InitializeParams } from 'vscode-languageserver/node';

export class Trust {
  private trustedNow = true;
  private canRefreshLenses = false;

  constructor(private readonly connection: Connection) {}

  /** What the client says at initialize: the trust it starts with, and whether it refreshes lenses. */
  initialize(params: InitializeParams): void {
    this.trustedNow = (params.initializationOptions as { trusted?: boolean } | undefined)?.trusted !== false;
    this.canRefreshLenses = params.capabilities.workspace?.codeLens?.refreshSupport === true;
  }

  get trusted(): boolean {
    return this.trustedNow;
  }

  /** `vitlens/trust`: the workspace's trust changed. */
  set(trusted: boolean): void {
    this.trustedNow = trusted;
    // The run lenses appear or disappear with trust.
    if (this.canRefreshLenses) void this.connection.sendRequest('workspace/codeLens/refresh');
  }

  /** Throws the ResponseError that says why `what` does not run here, when the workspace is untrusted. */
  refuseUntrusted(what: string): void {
    if (!this.trustedNow)
      throw new ResponseError(
        ErrorCodes.InvalidRequest,
        `${what} runs a model, which ViT Lens does not do in an untrusted workspace; trust the workspace to run it (profiles and diagnostics work without trust).`,
      );
  }
}
