/**
 * Profile view: what the model costs, counted exactly from the config (MACs by op kind and
 * stage, parameters), how MACs and estimated memory grow with resolution for each attention
 * kind, and the counting convention in words.
 */
import type { ProfileSweep } from '../../protocol/dashboard';
import type { ModelProfileSummary, StageSummary } from '../../protocol/results';
import { OP_KINDS, type OpKind } from '../../protocol/categories';
import {
  attentionName,
  formatBytes,
  formatFlops,
  formatInt,
  formatMacs,
  formatParams,
  si,
  sig,
} from '../../protocol/format';
import {
  attentionStyle,
  axis,
  bytesLogAxis,
  chartCard,
  logTick,
  opKindColor,
  options,
  type ChartSpec,
} from '../charts';
import { h, prose } from '../dom';
import { Table } from '../table';
import { withAlpha } from '../theme';
import { chartGrid, emptyState, facts, section, tableSort, type ViewContext, type ViewInstance } from './common';

export const OP_KIND_LABELS: Record<OpKind, string> = {
  stem: 'Stem / patch embedding',
  pos_embed: 'Positional embedding',
  projection: 'Q/K/V + output projections',
  landmark_conv: 'Landmark convolution',
  gaussian_kernel: 'Gaussian kernel (distances)',
  newton: 'Newton–Raphson pseudo-inverse',
  apply: 'SOFT apply (K₁·K₂⁺·K₁ᵀV)',
  dwconv: 'Depth-wise conv',
  softmax_attention: 'Softmax attention (QKᵀ, AV)',
  ufo_attention: 'UFO attention (KᵀV)',
  performer_attention: 'Performer attention (features, φ(K)ᵀV)',
  nystrom_attention: 'Nyström attention (kernels, apply)',
  nystrom_inverse: 'Nyström pseudo-inverse',
  linformer_attention: 'Linformer attention (E·K, F·V, QKᵀ, AV)',
  ffn: 'Feed-forward (MLP)',
  norm: 'Normalisation',
  head: 'Classifier head',
};

/** Two-line category label for charts (no rotated, clipped tick labels). */
export function stageLabelLines(s: StageSummary): string[] {
  if (s.group === 'top_level') return ['Pos.', 'embeddings'];
  if (s.group === 'head' || s.stage <= 0) return [stageLabel(s)];
  return s.attention ? [`Stage ${s.stage}`, attentionName(s.attention)] : [`Stage ${s.stage}`];
}

export function stageLabel(s: StageSummary): string {
  if (s.group === 'top_level') return 'Pos. embeddings';
  if (s.group === 'head') return 'Head';
  if (s.stage > 0) return `Stage ${s.stage}${s.attention ? ` · ${attentionName(s.attention)}` : ''}`;
  return s.group;
}

const sum = (xs: number[]): number => xs.reduce((a, b) => a + b, 0);
const siTick =
  (unit: string) =>
  (v: number | string): string =>
    si(Number(v), unit);

function macsByKindSpec(p: ModelProfileSummary): ChartSpec {
  const stages = p.stages.filter((s) => sum(Object.values(s.macsByKind)) > 0);
  const kinds = OP_KINDS.filter((k) => stages.some((s) => s.macsByKind[k] > 0));
  const totalE = sum(stages.map((s) => sum(Object.values(s.macsByKind))));
  return {
    id: 'profile-macs-by-kind',
    title: 'MACs per stage, by op kind',
    description: `Every counted multiply–accumulate (convention E: includes Gaussian-kernel distances and Newton iterations), at ${p.resolution}×${p.resolution}, batch ${p.batch}. The README-comparable total is convention ${p.readmeConvention}.`,
    size: 'tall',
    build: (t) => ({
      type: 'bar',
      data: {
        labels: stages.map(stageLabelLines),
        datasets: kinds.map((k) => ({
          label: OP_KIND_LABELS[k],
          data: stages.map((s) => s.macsByKind[k]),
          backgroundColor: opKindColor(k, t),
          borderColor: t.background,
          borderWidth: 1,
          stack: 'macs',
        })),
      },
      options: options(t, {
        interaction: { mode: 'index', intersect: false },
        scales: {
          x: { ...axis(t, 'Stage'), stacked: true, ticks: { color: t.foreground, maxRotation: 0, autoSkip: false } },
          y: { ...axis(t, 'MACs'), stacked: true, ticks: { color: t.foreground, callback: siTick('') } },
        },
        plugins: {
          tooltip: {
            filter: (item: { raw: unknown }) => Number(item.raw) > 0,
            callbacks: {
              label: (c: { dataset: { label?: string }; raw: unknown }) =>
                `${c.dataset.label}: ${formatMacs(Number(c.raw))}`,
            },
          },
        },
      }),
    }),
    summary: () => {
      const top = [...stages].sort((a, b) => sum(Object.values(b.macsByKind)) - sum(Object.values(a.macsByKind)))[0];
      const topKind = [...kinds].sort((a, b) => p.macsByKind[b] - p.macsByKind[a])[0];
      return `Stacked bar chart of MACs per stage by op kind: ${formatMacs(totalE)} in total (convention E); ${top ? `${stageLabel(top)} is the largest with ${formatMacs(sum(Object.values(top.macsByKind)))}` : ''}${topKind ? `; ${OP_KIND_LABELS[topKind]} is the largest kind with ${formatMacs(p.macsByKind[topKind])}` : ''}.`;
    },
    table: () => ({
      columns: ['Op kind', ...stages.map(stageLabel), 'Total'],
      rows: kinds.map((k) => [
        OP_KIND_LABELS[k],
        ...stages.map((s) => formatMacs(s.macsByKind[k])),
        formatMacs(sum(stages.map((s) => s.macsByKind[k]))),
      ]),
    }),
  };
}

function paramsSpec(p: ModelProfileSummary): ChartSpec {
  return {
    id: 'profile-params',
    title: 'Parameters per stage',
    description: `${formatInt(p.params)} parameters in total (${formatParams(p.params)}).`,
    build: (t) => ({
      type: 'bar',
      data: {
        labels: p.stages.map(stageLabelLines),
        datasets: [
          {
            label: 'Parameters',
            data: p.stages.map((s) => s.params),
            backgroundColor: withAlpha(t.purple, 0.75),
            borderColor: t.purple,
            borderWidth: 1.5,
          },
        ],
      },
      options: options(t, {
        plugins: {
          legend: { display: false },
          tooltip: {
            callbacks: {
              label: (c: { raw: unknown }) => `${formatInt(Number(c.raw))} parameters (${formatParams(Number(c.raw))})`,
            },
          },
        },
        scales: {
          x: { ...axis(t, 'Stage'), ticks: { color: t.foreground, maxRotation: 0, autoSkip: false } },
          y: { ...axis(t, 'Parameters'), ticks: { color: t.foreground, callback: siTick('') } },
        },
      }),
    }),
    summary: () => {
      const top = [...p.stages].sort((a, b) => b.params - a.params)[0];
      return `Bar chart of parameters per stage: ${formatParams(p.params)} in total${top ? `; ${stageLabel(top)} holds ${formatParams(top.params)} (${sig((100 * top.params) / p.params, 2)} %)` : ''}.`;
    },
    table: () => ({
      columns: ['Stage', 'Parameters', 'Share'],
      rows: p.stages.map((s) => [stageLabel(s), formatInt(s.params), `${sig((100 * s.params) / p.params, 3)} %`]),
    }),
  };
}

function sweepSpec(sw: ProfileSweep, metric: 'macs' | 'peakBytes'): ChartSpec {
  const isMacs = metric === 'macs';
  const fmt = isMacs ? formatMacs : formatBytes;
  const series = sw.attentions.map((a) => ({
    attention: a,
    points: sw.points.filter((p) => p.attention === a).sort((x, y) => x.resolution - y.resolution),
  }));
  const own = sw.attentions[0];
  return {
    id: isMacs ? 'profile-sweep-macs' : 'profile-sweep-memory',
    title: isMacs
      ? 'MACs vs resolution, per attention kind'
      : 'Estimated peak memory vs resolution, per attention kind',
    description: isMacs
      ? `The same backbone with each attention kind (this config's own, ${attentionName(own)}, first). Exact counts, convention ${sw.convention}; log scale.`
      : 'Analytic estimate, not a measurement: float32 weights + buffers + the largest set of simultaneously live activations. Log scale.',
    build: (t) => ({
      type: 'line',
      data: {
        datasets: series.map((s) => {
          const st = attentionStyle(s.attention, t);
          return {
            label: attentionName(s.attention),
            data: s.points.map((p) => ({ x: p.resolution, y: p[metric] })),
            borderColor: st.color,
            backgroundColor: st.color,
            borderDash: st.dash,
            pointStyle: st.pointStyle,
            pointRadius: 4,
            pointHoverRadius: 6,
            borderWidth: s.attention === own ? 2.5 : 2,
          };
        }),
      },
      options: options(t, {
        scales: {
          x: { ...axis(t, 'Input resolution (px)'), type: 'linear', ticks: { color: t.foreground } },
          y: isMacs
            ? {
                ...axis(t, `MACs (convention ${sw.convention}, log)`),
                type: 'logarithmic',
                ticks: { color: t.foreground, callback: logTick((v) => si(v, '')) },
              }
            : bytesLogAxis(t, 'Estimated peak memory (log)', formatBytes),
        },
        plugins: {
          tooltip: {
            callbacks: {
              title: (items: { parsed: { x: number } }[]) => {
                const r = items[0]?.parsed.x;
                const tokens = sw.points.find((p) => p.resolution === r)?.tokens;
                return `${r} px${tokens ? ` (${formatInt(tokens)} tokens in stage 1)` : ''}`;
              },
              label: (c: { dataset: { label?: string }; parsed: { y: number } }) =>
                `${c.dataset.label}: ${fmt(c.parsed.y)}${isMacs ? '' : ' (estimate)'}`,
            },
          },
        },
      }),
    }),
    summary: () => {
      const parts = series.map((s) => {
        const first = s.points[0];
        const last = s.points[s.points.length - 1];
        return first && last
          ? `${attentionName(s.attention)} ${fmt(first[metric])} at ${first.resolution} px to ${fmt(last[metric])} at ${last.resolution} px`
          : `${attentionName(s.attention)} no points`;
      });
      return `Line chart, log scale, of ${isMacs ? 'MACs' : 'estimated peak memory'} against input resolution for ${series.length} attention kinds: ${parts.join('; ')}.`;
    },
    table: () => ({
      columns: [
        'Attention',
        'Resolution (px)',
        'Tokens (stage 1)',
        isMacs ? `MACs (conv. ${sw.convention})` : 'Estimated peak memory',
      ],
      rows: series.flatMap((s) =>
        s.points.map((p) => [
          attentionName(s.attention),
          p.resolution,
          formatInt(p.tokens),
          isMacs
            ? `${formatInt(p.macs)} (${formatMacs(p.macs)})`
            : `${formatBytes(p.peakBytes)} (${formatInt(p.peakBytes)} B)`,
        ]),
      ),
    }),
    note: () => {
      const missing = sw.attentions.flatMap((a) =>
        sw.resolutions
          .filter((r) => !sw.points.some((p) => p.attention === a && p.resolution === r))
          .map((r) => `${attentionName(a)} at ${r} px`),
      );
      return missing.length ? `Not defined for this backbone (no point): ${missing.join(', ')}.` : null;
    },
  };
}

function conventionBlock(p: ModelProfileSummary): HTMLElement {
  const table = new Table<ModelProfileSummary['conventions'][number]>({
    id: 'profile-conventions',
    caption: 'MAC counting conventions A–E (each adds to the previous)',
    sortable: false,
    columns: [
      {
        key: 'c',
        label: 'Convention',
        value: (r) => r.convention,
        format: (r) =>
          r.convention === p.readmeConvention ? h('strong', null, `${r.convention} (README)`) : r.convention,
      },
      { key: 'l', label: 'Counts', value: (r) => r.label },
      { key: 'm', label: 'MACs', numeric: true, value: (r) => r.macs, format: (r) => `${formatMacs(r.macs)}` },
      {
        key: 'f',
        label: 'FLOPs (= 2 × MACs)',
        numeric: true,
        value: (r) => r.flops,
        format: (r) => formatFlops(r.flops),
      },
    ],
    rowClass: (r) => (r.convention === p.readmeConvention ? 'highlight' : null),
  });
  table.setRows(p.conventions);
  return section(
    'Counting convention',
    h(
      'div',
      { className: 'prose' },
      h(
        'p',
        null,
        `Unit: `,
        h('strong', null, p.unit),
        ` (multiply–accumulates; 1 MAC = one multiply + one add). `,
        h('strong', null, 'FLOPs = 2 × MACs'),
        '. Element-wise work (norms, activations, exp, bias adds) is counted separately and never converted into MACs.',
      ),
      h('p', null, ...prose(p.readmeConventionNote)),
      p.newton.macsAreLowerBound
        ? h('p', { className: 'callout callout--warn' }, `Newton MACs are a lower bound: ${p.newton.source}`)
        : null,
      h('p', { className: 'muted' }, `Memory figures are estimates: ${p.memory.note}`),
    ),
    table.element,
  );
}

function stagesTable(ctx: ViewContext, p: ModelProfileSummary): HTMLElement {
  const table = new Table<StageSummary>({
    id: 'profile-stages',
    caption: 'Per-stage shapes, parameters, MACs and estimated peak activations',
    hideCaption: true,
    ...tableSort(ctx, 'profile-stages'),
    columns: [
      { key: 'stage', label: 'Stage', value: (s) => stageLabel(s) },
      {
        key: 'grid',
        label: 'Grid',
        numeric: true,
        value: (s) => s.grid || null,
        format: (s) => (s.grid ? `${s.grid}×${s.grid}` : '—'),
      },
      {
        key: 'tokens',
        label: 'Tokens',
        numeric: true,
        value: (s) => s.tokens || null,
        format: (s) => (s.tokens ? formatInt(s.tokens) : '—'),
      },
      { key: 'landmarks', label: 'Landmarks', numeric: true, value: (s) => s.landmarks },
      { key: 'dim', label: 'Dim', numeric: true, value: (s) => s.dim || null },
      { key: 'heads', label: 'Heads', numeric: true, value: (s) => s.heads || null },
      { key: 'depth', label: 'Depth', numeric: true, value: (s) => s.depth || null },
      { key: 'params', label: 'Params', numeric: true, value: (s) => s.params, format: (s) => formatParams(s.params) },
      {
        key: 'macsB',
        label: `MACs (${p.readmeConvention})`,
        title: `Convention ${p.readmeConvention} (README)`,
        numeric: true,
        value: (s) => s.macsByConvention[p.readmeConvention],
        format: (s) => formatMacs(s.macsByConvention[p.readmeConvention]),
      },
      {
        key: 'macsE',
        label: 'MACs (E)',
        title: 'Convention E (everything)',
        numeric: true,
        value: (s) => s.macsByConvention.E,
        format: (s) => formatMacs(s.macsByConvention.E),
      },
      {
        key: 'peak',
        label: 'Peak activations (est.)',
        title: 'Estimated largest live-activation set inside the stage (float32)',
        numeric: true,
        value: (s) => s.peakActivationBytesEstimate,
        format: (s) => formatBytes(s.peakActivationBytesEstimate),
      },
    ],
  });
  table.setRows(p.stages);
  return section('Stages', table.element);
}

function summaryFacts(p: ModelProfileSummary): HTMLElement {
  const b = p.macsByConvention[p.readmeConvention];
  return h(
    'div',
    { className: 'summary' },
    h('p', { className: 'lead' }, p.title),
    facts(
      [
        [
          'Parameters',
          [h('strong', null, formatParams(p.params)), h('span', { className: 'muted' }, ` (${formatInt(p.params)})`)],
        ],
        [
          `MACs (convention ${p.readmeConvention})`,
          [h('strong', null, formatMacs(b)), h('span', { className: 'muted' }, ` = ${formatFlops(2 * b)}`)],
        ],
        ['MACs (all, E)', formatMacs(p.macsByConvention.E)],
        ...(p.published
          ? ([
              [
                'Published',
                `${p.published.params} params, ${p.published.gflops} “GFLOPs” (GMACs), ${p.published.top1} % top-1 — ${p.published.source}`,
              ],
            ] as [string, string][])
          : []),
        [
          'Peak memory (estimate)',
          [
            h('strong', null, formatBytes(p.memory.peakTotalBytes)),
            h('span', { className: 'muted' }, ` at ${p.memory.peakAt}`),
          ],
        ],
        ['Input', `${p.resolution}×${p.resolution}, batch ${p.batch}`],
        [
          'Newton',
          `variant ${p.newton.variant}, ${p.newton.iterations} iterations${p.newton.macsAreLowerBound ? ' (MACs a lower bound)' : ''}`,
        ],
        ['Kernel method', p.kernelMethod],
      ],
      'facts facts--grid',
    ),
    p.notes.length ? h('ul', { className: 'notes' }, ...p.notes.map((n) => h('li', null, ...prose(n)))) : null,
  );
}

export function renderProfile(ctx: ViewContext, root: HTMLElement): ViewInstance {
  const d = ctx.data();
  const p = d.profile;
  if (!p && !d.profileSweep) {
    root.appendChild(
      emptyState(
        'No profile yet',
        'Open a config and run `ViT Lens: Show profile`, or run `vitlens profile <config> --html report.html`.',
        { ctx, view: 'profile', label: 'Profile again' },
      ),
    );
    return { update() {} };
  }
  if (p) root.appendChild(summaryFacts(p));
  const grid = chartGrid();
  root.appendChild(grid);
  if (p) {
    chartCard(grid, macsByKindSpec(p));
    chartCard(grid, paramsSpec(p));
  }
  if (d.profileSweep && d.profileSweep.points.length) {
    chartCard(grid, sweepSpec(d.profileSweep, 'macs'));
    chartCard(grid, sweepSpec(d.profileSweep, 'peakBytes'));
  } else {
    grid.appendChild(h('p', { className: 'muted' }, 'No resolution sweep in this data.'));
  }
  if (p) {
    root.appendChild(conventionBlock(p));
    root.appendChild(stagesTable(ctx, p));
  }
  return { update() {} };
}
