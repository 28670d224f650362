/**
 * `vitlens/profile`, `vitlens/profileSweep` and `vitlens/dashboard`: what an open config's model
 * costs, computed here in the server (no worker: the profile walk is arithmetic on the spec).
 * The dashboard's data is built by report/data.ts, as the CLI's HTML report's is.
 */
import { ErrorCodes, ResponseError } from 'vscode-languageserver/node';
import { DashboardRequest, ProfileRequest, ProfileSweepRequest } from '../../../protocol/lsp';
import { summarize } from '../../core/profile/summary';
import { profileSweep } from '../../core/profile/sweep';
import { dashboardData } from '../../report/data';
import type { ServerContext } from '../context';

/** Sweep resolutions a client may ask for (each one is a profile walk of every compared attention). */
function checkSweepResolutions(resolutions: number[] | undefined): void {
  const bad = resolutions?.find((r) => !Number.isInteger(r) || r < 16 || r > 8192);
  if (bad !== undefined || (resolutions?.length ?? 0) > 64)
    throw new ResponseError(
      ErrorCodes.InvalidParams,
      `resolutions must be at most 64 integers in [16, 8192]${bad !== undefined ? `, got ${bad}` : ''}`,
    );
}

export function registerProfileHandlers({ connection, configs, guard }: ServerContext): void {
  connection.onRequest(ProfileRequest, (p) =>
    guard('profile', null, () => {
      const a = configs.analyzed(p.uri);
      const spec = a?.doc.analysis.spec;
      const prof = a?.doc.profile(p.resolution, p.batch ?? 1);
      return spec && prof ? summarize(spec, prof, { ops: p.ops ?? false }) : null;
    }),
  );
  connection.onRequest(ProfileSweepRequest, (p) => {
    checkSweepResolutions(p.resolutions);
    return guard('profileSweep', null, () => {
      const spec = configs.analyzed(p.uri)?.doc.analysis.spec;
      return spec ? profileSweep(spec, p.resolutions) : null;
    });
  });
  connection.onRequest(DashboardRequest, (p) => {
    checkSweepResolutions(p.sweepResolutions);
    return guard('dashboard', null, () => {
      const spec = configs.analyzed(p.uri)?.doc.analysis.spec;
      if (!spec) return null;
      return dashboardData({
        spec,
        source: p.uri,
        label: p.label,
        producer: p.producer,
        view: p.view,
        resolution: p.resolution,
        sweepResolutions: p.sweepResolutions,
        bench: p.bench,
        pinv: p.pinv,
        infer: p.infer,
        approx: p.approx,
        grad: p.grad,
      });
    });
  });
}
