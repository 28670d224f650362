/**
 * Gradients view (`vitlens grad`, `vitlens/grad`): one training step's gradients, without an
 * optimizer step. A bar chart (log y) of the gradient L2 norm of every parameter tensor in model
 * (state-dict) order, one colour per group — each stage's embedding and blocks, what runs
 * after the stages, the final norm, the head — with the flagged parameters (exploding, vanishing,
 * non-finite under GRAD_RULE) in a series of their own and the rule's thresholds drawn as guides; a
 * select switches it to ‖grad‖ / ‖param‖. Then the input gradient per channel, SOFT's analytic
 * Newton gradient against the one through the iterations per stage (1 % guide), the warnings with
 * the rule in words, and every parameter in a sortable table.
 */
import { GRAD_RULE, type GradParameter, type GradReport } from '../../protocol/grad';
import { attentionName, formatInt, formatMs, formatProbability, formatSci } from '../../protocol/format';
import { axis, chartCard, decades, options, positive, type ChartCard, type ChartSpec } from '../charts';
import { h, nextId, prose } from '../dom';
import { Table } from '../table';
import { mix, type Theme } from '../theme';
import {
  badge,
  chartGrid,
  emptyState,
  facts,
  rerunButton,
  section,
  tableSort,
  type ViewContext,
  type ViewInstance,
} from './common';

export type GradMetric = 'grad' | 'ratio';

export const GRAD_METRIC_LABEL: Record<GradMetric, string> = {
  grad: '‖∂L/∂θ‖₂, the gradient L2 norm',
  ratio: '‖∂L/∂θ‖₂ / ‖θ‖₂, the relative step plain SGD with learning rate 1 would take',
};
const METRIC_SHORT: Record<GradMetric, string> = { grad: '‖grad‖', ratio: '‖grad‖ / ‖param‖' };

/**
 * Where a parameter tensor sits in the model: a stage's embedding (its patch embedding, position
 * embedding, and the cls token the stage takes) or its blocks, or after the stages.
 */
export interface GradGroup {
  id: string;
  label: string;
  stage: number | null;
  kind: 'embedding' | 'blocks' | 'after' | 'norm' | 'head';
  /** Legend order: stages in order (embedding, then blocks), then what follows them. */
  order: number;
}

const EMBEDDING = /^(patch_embed|pos_embed|cls_token|dist_token)/;

/**
 * The group of a parameter, from its stage (the job's: the stage whose layers read it) and its
 * state-dict key; `single`: the model has one stage (a plain ViT), so groups are not numbered.
 */
export function gradGroup(p: Pick<GradParameter, 'key' | 'stage'>, single = false): GradGroup {
  const first = p.key.split('.')[0] ?? p.key;
  if (p.stage != null) {
    const embedding = EMBEDDING.test(first);
    const what = embedding ? 'embedding' : 'blocks';
    return {
      id: `stage${p.stage}-${what}`,
      label: single ? (embedding ? 'Embedding' : 'Blocks') : `Stage ${p.stage} ${embedding ? 'embedding' : 'blocks'}`,
      stage: p.stage,
      kind: what,
      order: 2 * p.stage + (embedding ? 0 : 1),
    };
  }
  if (/^head/.test(first)) return { id: 'head', label: 'Head', stage: null, kind: 'head', order: 10_002 };
  if (/^(fc_)?norm/.test(first)) return { id: 'norm', label: 'Final norm', stage: null, kind: 'norm', order: 10_001 };
  return {
    id: 'after',
    label: first === 'cls_attn_blocks' ? 'Class-attention blocks' : 'After the stages',
    stage: null,
    kind: 'after',
    order: 10_000,
  };
}

/** Every parameter's group, and the groups in legend order. */
export function gradGroups(r: GradReport): { of: GradGroup[]; groups: GradGroup[] } {
  const single = new Set(r.parameters.map((p) => p.stage).filter((s) => s != null)).size <= 1;
  const of = r.parameters.map((p) => gradGroup(p, single));
  const byId = new Map(of.map((g) => [g.id, g]));
  return { of, groups: [...byId.values()].sort((a, b) => a.order - b.order) };
}

/** A group's colour: one per stage (its embedding a tint of it), greys after the stages; red is the flags'. */
export function groupColor(g: GradGroup, t: Theme): string {
  const palette = [t.blue, t.orange, t.green, t.purple, t.yellow];
  if (g.stage != null) {
    const c = palette[(g.stage - 1) % palette.length]!;
    return g.kind === 'embedding' ? mix(c, t.background, 0.45) : c;
  }
  if (g.kind === 'after') return mix(t.purple, t.foreground, 0.35);
  if (g.kind === 'norm') return mix(t.foreground, t.background, 0.55);
  return mix(t.foreground, t.background, 0.25);
}

/** The value a metric plots for a parameter (JSON writes a non-finite norm as null). */
export function metricValue(p: GradParameter, metric: GradMetric): number | null {
  const v = metric === 'grad' ? p.gradNorm : p.ratio;
  return typeof v === 'number' ? v : null;
}

const decadeTick = (v: number | string): string =>
  Math.abs(Math.log10(Number(v)) - Math.round(Math.log10(Number(v)))) < 1e-9 ? formatSci(Number(v), 0) : '';

/** The rule's thresholds as guide lines: the median, and the exploding and vanishing limits. */
export function gradGuides(r: GradReport): { value: number; label: string }[] {
  const m = r.totals.medianGradNorm;
  if (!(m > 0) || !Number.isFinite(m)) return [];
  const e = GRAD_RULE.explodingRatio;
  const v = GRAD_RULE.vanishingRatio;
  return [
    { value: m * e, label: `exploding above ${formatSci(e, 0)} × median = ${formatSci(m * e, 2)}` },
    { value: m, label: `median ${formatSci(m, 2)}` },
    { value: m * v, label: `vanishing below ${formatSci(v, 0)} × median = ${formatSci(m * v, 2)}` },
  ];
}

const flagText = (p: GradParameter): string =>
  p.flag === 'non-finite'
    ? 'non-finite (NaN or Inf elements)'
    : p.flag
      ? `${p.flag}: ${formatSci(p.toMedian, 2)} × the median`
      : '';

/** The per-parameter chart: one bar per tensor in model order, a series per group, the flagged ones apart. */
function normsSpec(r: GradReport, metric: GradMetric): ChartSpec {
  const { of, groups } = gradGroups(r);
  const params = r.parameters;
  const values = params.map((p) => metricValue(p, metric));
  const plotted = values.map(positive);
  const flagged = params.map((p, i) => ({ p, i })).filter((x) => x.p.flag);
  const guides = metric === 'grad' ? gradGuides(r) : [];
  const range = decades([...plotted, ...guides.map((g) => g.value)]);
  const short = METRIC_SHORT[metric];
  const kinds = [...new Set(flagged.map((x) => x.p.flag))].join(', ');
  const flaggedLabel = `Flagged (${kinds})`;
  return {
    id: 'grad-norms',
    title: metric === 'grad' ? 'Gradient norm per parameter' : 'Gradient norm / parameter norm per parameter',
    description: `${GRAD_METRIC_LABEL[metric]}, of each of the ${params.length} parameter tensors in model (state-dict) order, coloured by where it sits; log scale. ${
      metric === 'grad'
        ? `Dotted guides: the median over all parameters and the rule's limits (${formatSci(GRAD_RULE.explodingRatio, 0)} × and ${formatSci(GRAD_RULE.vanishingRatio, 0)} × it).`
        : 'The flags are the gradient norm’s (see the rule below).'
    }`,
    size: 'tall',
    build: (t) => ({
      type: 'bar',
      data: {
        labels: params.map((p) => p.key),
        datasets: [
          ...groups.map((g) => {
            const color = groupColor(g, t);
            return {
              label: g.label,
              data: plotted.map((v, i) => (of[i]!.id === g.id && !params[i]!.flag ? v : null)),
              backgroundColor: color,
              borderColor: color,
              borderWidth: 0,
              pointStyle: 'rect' as const,
              grouped: false,
              barPercentage: 0.85,
              categoryPercentage: 1,
            };
          }),
          ...(flagged.length
            ? [
                {
                  label: flaggedLabel,
                  data: plotted.map((v, i) => (params[i]!.flag ? v : null)),
                  backgroundColor: t.red,
                  borderColor: t.foreground,
                  borderWidth: 1.5,
                  pointStyle: 'triangle' as const,
                  grouped: false,
                  barPercentage: 1,
                  categoryPercentage: 1,
                },
              ]
            : []),
        ],
      },
      options: options(t, {
        interaction: { mode: 'index', intersect: false },
        scales: {
          x: {
            ...axis(t, 'Parameter tensor in model order (# as in the table; hover for its name)'),
            ticks: {
              color: t.foreground,
              maxRotation: 0,
              autoSkip: true,
              callback: (_v: number | string, i: number) => String(i + 1),
            },
            grid: { display: false },
          },
          y: {
            ...axis(t, `${short} (log)`),
            type: 'logarithmic',
            ...(range ? { min: range.min, max: range.max } : {}),
            ticks: { color: t.foreground, callback: decadeTick },
          },
        },
        plugins: {
          vitlensGuides: {
            color: t.foreground,
            font: `${Math.max(11, Math.round(t.fontSize * 0.92))}px ${t.fontFamily}`,
            horizontal: guides,
          },
          tooltip: {
            filter: (item: { raw: unknown }) => item.raw != null,
            callbacks: {
              title: (items: { dataIndex: number }[]) => {
                const i = items[0]?.dataIndex;
                return i == null ? '' : `#${i + 1} ${params[i]!.key}`;
              },
              label: (c: { dataIndex: number }) => {
                const p = params[c.dataIndex]!;
                return `${of[c.dataIndex]!.label}: ${short} ${formatSci(values[c.dataIndex], 3)}${p.flag ? ` — ${flagText(p)}` : ''}`;
              },
              afterLabel: (c: { dataIndex: number }) => {
                const p = params[c.dataIndex]!;
                return `shape ${p.shape.join('×') || 'scalar'}, ‖param‖ ${formatSci(p.paramNorm, 3)}, ${metric === 'grad' ? `‖grad‖/‖param‖ ${formatSci(p.ratio, 3)}` : `‖grad‖ ${formatSci(p.gradNorm, 3)}`}`;
              },
            },
          },
        },
      }),
    }),
    summary: () => {
      const shown = params.map((p, i) => ({ p, v: plotted[i] })).filter((x) => x.v != null) as {
        p: GradParameter;
        v: number;
      }[];
      const counts = groups.map((g) => `${g.label} ${of.filter((x) => x.id === g.id).length}`).join(', ');
      const head = `Bar chart, log scale, of ${short} for each of the ${params.length} parameter tensors in model order, by group (${counts})`;
      if (!shown.length) return `${head}: nothing to plot.`;
      const max = shown.reduce((b, x) => (x.v > b.v ? x : b));
      const min = shown.reduce((b, x) => (x.v < b.v ? x : b));
      const flags = flagged.length
        ? `${flagged.length} flagged: ${flagged.map((x) => `${x.p.key} (${x.p.flag})`).join(', ')}`
        : 'none flagged';
      return `${head}: largest ${formatSci(max.v, 3)} (${max.p.key}), smallest ${formatSci(min.v, 3)} (${min.p.key})${metric === 'grad' ? `, median ${formatSci(r.totals.medianGradNorm, 3)}` : ''}; ${flags}.`;
    },
    table: () => ({
      columns: ['#', 'Parameter', 'Group', short, 'Flag'],
      rows: params.map((p, i) => [i + 1, p.key, of[i]!.label, formatSci(values[i], 3), p.flag ?? '']),
    }),
    note: () => {
      const lines: string[] = [];
      if (flagged.length)
        lines.push(
          `Flagged (red bars, ▲ in the legend): ${flagged.map((x) => `#${x.i + 1} ${x.p.key} — ${flagText(x.p)}`).join('; ')}.`,
        );
      const hidden = params
        .map((p, i) => ({ p, i, v: values[i] }))
        .filter((x) => plotted[x.i] == null)
        .map(
          (x) =>
            `#${x.i + 1} ${x.p.key} (${x.v == null ? (metric === 'ratio' && x.p.ratio == null && Number.isFinite(x.p.gradNorm) ? 'θ = 0' : 'not finite') : formatSci(x.v, 2)})`,
        );
      if (hidden.length) lines.push(`Not plotted (no place on a log axis): ${hidden.join('; ')}.`);
      return lines.length ? lines.join(' ') : null;
    },
  };
}

const channelName = (r: GradReport, c: number): string =>
  r.inputGradient.channelNorms.length === 3 && r.items.every((it) => it.kind === 'image')
    ? `channel ${c} (${'RGB'[c]})`
    : `channel ${c}`;

function inputSpec(r: GradReport): ChartSpec {
  const ig = r.inputGradient;
  const names = ig.channelNorms.map((_, c) => channelName(r, c));
  return {
    id: 'grad-input-channels',
    title: 'Input gradient per channel',
    description: `‖∂L/∂x‖₂ per input channel, over the batch and the pixels of the model input (after the transform); whole input ${formatSci(ig.norm, 3)}, largest |∂L/∂x| ${formatSci(ig.maxAbs, 3)}.`,
    size: 'short',
    build: (t) => ({
      type: 'bar',
      data: {
        labels: names,
        datasets: [
          {
            label: 'Input-gradient L2 norm',
            data: ig.channelNorms,
            backgroundColor: mix(t.blue, t.background, 0.25),
            borderColor: t.blue,
            borderWidth: 1.5,
          },
        ],
      },
      options: options(t, {
        plugins: {
          legend: { display: false },
          tooltip: {
            callbacks: { label: (c: { raw: unknown }) => `‖∂L/∂x‖ ${formatSci(Number(c.raw), 3)}` },
          },
        },
        scales: {
          x: { ...axis(t, 'Input channel'), ticks: { color: t.foreground, maxRotation: 0 } },
          y: {
            ...axis(t, '‖∂L/∂x‖ over the channel'),
            beginAtZero: true,
            ticks: { color: t.foreground, callback: (v: number | string) => formatSci(Number(v), 1) },
          },
        },
      }),
    }),
    summary: () =>
      `Bar chart of the input gradient's L2 norm per channel: ${names.map((n, c) => `${n} ${formatSci(ig.channelNorms[c], 3)}`).join(', ')}; whole input ${formatSci(ig.norm, 3)}.`,
    table: () => ({
      columns: ['Channel', '‖∂L/∂x‖'],
      rows: names.map((n, c) => [n, formatSci(ig.channelNorms[c], 3)]),
    }),
  };
}

const overRule = (d: number): boolean => !(d <= GRAD_RULE.newtonRelativeDifference);

function newtonSpec(r: GradReport): ChartSpec {
  const limit = GRAD_RULE.newtonRelativeDifference;
  const labels = r.newton.map((n) => `Stage ${n.stage} (${attentionName(n.attention)})`);
  const range = decades([...r.newton.map((n) => positive(n.relativeDifference)), limit]);
  return {
    id: 'grad-newton',
    title: 'SOFT Newton inverse: analytic vs through the iterations',
    description: `‖g_analytic − g_unrolled‖₂ / ‖g_unrolled‖₂ over each SOFT stage's parameter gradients (a stage's also carry every later SOFT stage's difference); log scale. Over ${limit * 100} % (the guide): the inverse has not converged.`,
    size: 'short',
    build: (t) => ({
      type: 'bar',
      data: {
        labels,
        datasets: [
          {
            label: 'Relative difference',
            data: r.newton.map((n) => positive(n.relativeDifference)),
            backgroundColor: r.newton.map((n) => (overRule(n.relativeDifference) ? t.red : t.green)),
            borderColor: r.newton.map((n) => (overRule(n.relativeDifference) ? t.foreground : t.green)),
            borderWidth: r.newton.map((n) => (overRule(n.relativeDifference) ? 1.5 : 0)),
          },
        ],
      },
      options: options(t, {
        plugins: {
          legend: { display: false },
          vitlensGuides: {
            color: t.foreground,
            font: `${Math.max(11, Math.round(t.fontSize * 0.92))}px ${t.fontFamily}`,
            horizontal: [{ value: limit, label: `${limit * 100} % — the rule` }],
          },
          tooltip: {
            callbacks: {
              label: (c: { dataIndex: number }) => {
                const n = r.newton[c.dataIndex]!;
                return `${formatSci(n.relativeDifference, 2)} (${n.iterations} iterations, ${n.parameters} parameters)${overRule(n.relativeDifference) ? ' — over the rule' : ''}`;
              },
            },
          },
        },
        scales: {
          x: { ...axis(t, 'SOFT stage'), ticks: { color: t.foreground, maxRotation: 0 } },
          y: {
            ...axis(t, 'Relative L2 difference (log)'),
            type: 'logarithmic',
            ...(range ? { min: range.min, max: range.max } : {}),
            ticks: { color: t.foreground, callback: decadeTick },
          },
        },
      }),
    }),
    summary: () =>
      `Bar chart, log scale, of the relative difference between SOFT's analytic Newton gradient and the gradient through the iterations, per stage: ${r.newton
        .map(
          (n, i) =>
            `${labels[i]} ${formatSci(n.relativeDifference, 2)}${overRule(n.relativeDifference) ? ' (over 1 %)' : ''}`,
        )
        .join(', ')}; guide at ${limit * 100} %.`,
    table: () => ({
      columns: ['Stage', 'Relative difference', 'Over the rule'],
      rows: r.newton.map((n, i) => [
        labels[i]!,
        formatSci(n.relativeDifference, 3),
        overRule(n.relativeDifference) ? 'yes' : 'no',
      ]),
    }),
    note: () => {
      const zero = r.newton.filter((n) => positive(n.relativeDifference) == null);
      return zero.length
        ? `Not plotted (no place on a log axis): ${zero.map((n) => `stage ${n.stage} (${formatSci(n.relativeDifference, 2)})`).join('; ')}.`
        : null;
    },
  };
}

interface ParamRow {
  index: number;
  p: GradParameter;
  group: GradGroup;
}

function parametersTable(ctx: ViewContext, r: GradReport): Table<ParamRow> {
  const { of } = gradGroups(r);
  const sci = (v: number | null | undefined) => formatSci(v, 3);
  const table = new Table<ParamRow>({
    id: 'grad-parameters',
    caption: `Every parameter tensor in model order (${r.parameters.length}), flagged ones tinted`,
    ...tableSort(ctx, 'grad-parameters'),
    rowClass: (x) => (x.p.flag ? 'row--failed' : null),
    columns: [
      { key: 'index', label: '#', title: 'Position in the state dict', numeric: true, value: (x) => x.index + 1 },
      { key: 'key', label: 'Parameter', value: (x) => x.p.key, format: (x) => h('code', null, x.p.key) },
      { key: 'group', label: 'Group', value: (x) => x.group.label },
      {
        key: 'shape',
        label: 'Shape',
        value: (x) => x.p.shape.join('×') || 'scalar',
      },
      {
        key: 'elements',
        label: 'Elements',
        numeric: true,
        value: (x) => x.p.elements,
        format: (x) => formatInt(x.p.elements),
      },
      {
        key: 'grad',
        label: '‖grad‖',
        title: '‖∂L/∂θ‖₂',
        numeric: true,
        value: (x) => metricValue(x.p, 'grad'),
        format: (x) => sci(metricValue(x.p, 'grad')),
      },
      {
        key: 'maxAbs',
        label: 'max |grad|',
        title: 'The largest |∂L/∂θ| element',
        numeric: true,
        value: (x) => x.p.gradMaxAbs,
        format: (x) => sci(x.p.gradMaxAbs),
      },
      {
        key: 'param',
        label: '‖param‖',
        title: '‖θ‖₂',
        numeric: true,
        value: (x) => x.p.paramNorm,
        format: (x) => sci(x.p.paramNorm),
      },
      {
        key: 'ratio',
        label: '‖grad‖ / ‖param‖',
        title: 'The relative step plain SGD with learning rate 1 would take (— when θ = 0)',
        numeric: true,
        value: (x) => x.p.ratio,
        format: (x) => sci(x.p.ratio),
      },
      {
        key: 'toMedian',
        label: '/ median',
        title: '‖grad‖ over the median ‖grad‖ of all parameters: what the rule tests',
        numeric: true,
        value: (x) => x.p.toMedian,
        format: (x) => formatSci(x.p.toMedian, 2),
      },
      {
        key: 'flag',
        label: 'Flag',
        value: (x) => x.p.flag ?? '',
        format: (x) => (x.p.flag ? badge(x.p.flag, 'error', flagText(x.p)) : ''),
      },
    ],
  });
  table.setRows(r.parameters.map((p, index) => ({ index, p, group: of[index]! })));
  return table;
}

function itemsTable(ctx: ViewContext, r: GradReport): Table<GradReport['items'][number]> {
  const table = new Table<GradReport['items'][number]>({
    id: 'grad-items',
    caption: 'Each item of the batch: the class the loss is taken against, and what the model predicts',
    ...tableSort(ctx, 'grad-items'),
    columns: [
      { key: 'name', label: 'Item', value: (it) => it.name },
      {
        key: 'label',
        label: 'Label',
        numeric: true,
        value: (it) => it.label,
        format: (it) => `${it.label} (${it.labelName})`,
      },
      {
        key: 'predicted',
        label: 'Predicted',
        numeric: true,
        value: (it) => it.predicted.index,
        format: (it) => `${it.predicted.index} (${it.predicted.label})`,
      },
      {
        key: 'probability',
        label: 'Probability',
        numeric: true,
        value: (it) => it.predicted.probability,
        format: (it) => formatProbability(it.predicted.probability),
      },
      {
        key: 'loss',
        label: 'Loss',
        title: '−log softmax(logits)[label] of this item',
        numeric: true,
        value: (it) => it.loss,
        format: (it) => it.loss.toPrecision(6),
      },
    ],
  });
  table.setRows(r.items);
  return table;
}

function newtonTable(ctx: ViewContext, r: GradReport): Table<GradReport['newton'][number]> {
  const table = new Table<GradReport['newton'][number]>({
    id: 'grad-newton-stages',
    caption: 'Per SOFT stage: the analytic Newton gradient against back-propagation through the iterations',
    ...tableSort(ctx, 'grad-newton-stages'),
    rowClass: (n) => (overRule(n.relativeDifference) ? 'row--failed' : null),
    columns: [
      { key: 'stage', label: 'Stage', numeric: true, value: (n) => n.stage },
      { key: 'attention', label: 'Attention', value: (n) => attentionName(n.attention) },
      { key: 'variant', label: 'Variant', value: (n) => n.variant },
      { key: 'iterations', label: 'Iterations', numeric: true, value: (n) => n.iterations },
      {
        key: 'parameters',
        label: 'Parameters',
        title: 'Tensors of the stage compared',
        numeric: true,
        value: (n) => n.parameters,
      },
      {
        key: 'difference',
        label: 'Relative difference',
        title: '‖g_analytic − g_unrolled‖₂ / ‖g_unrolled‖₂',
        numeric: true,
        value: (n) => n.relativeDifference,
        format: (n) => formatSci(n.relativeDifference, 3),
      },
      {
        key: 'verdict',
        label: `Within ${GRAD_RULE.newtonRelativeDifference * 100} %`,
        value: (n) => (overRule(n.relativeDifference) ? 'no' : 'yes'),
        format: (n) =>
          overRule(n.relativeDifference)
            ? badge('over 1 %: not converged', 'warn')
            : badge('converged', 'ok', 'The analytic gradient is the derivative here'),
      },
    ],
  });
  table.setRows(r.newton);
  return table;
}

const WARNING_BADGE: Record<string, 'warn' | 'error'> = {
  exploding: 'error',
  'non-finite': 'error',
  loss: 'error',
  vanishing: 'warn',
  newton: 'warn',
};

function modeText(r: GradReport): string {
  return r.mode === 'eval'
    ? 'eval — BatchNorm with its running statistics (dropout is never in the graphs)'
    : 'train — BatchNorm with the batch’s statistics';
}

function newtonBackwardText(r: GradReport): string {
  if (r.newtonBackward === 'analytic')
    return 'analytic (−Vᵀ·G·Vᵀ: the derivative where V has converged to P⁻¹), checked per stage against back-propagation through the iterations';
  if (r.newtonBackward === 'unrolled')
    return 'unrolled: back-propagation through every iteration (nothing to compare against)';
  return 'no SOFT stage';
}

export function renderGrad(ctx: ViewContext, root: HTMLElement): ViewInstance {
  const r = ctx.data().grad;
  if (!r) {
    root.appendChild(
      emptyState(
        'No gradient report yet',
        'No gradient report yet — run `vitlens grad <config> --label N --html report.html` or use the Gradients CodeLens.',
        { ctx, view: 'grad', label: 'Compute gradients' },
      ),
    );
    return { update() {} };
  }
  let metric: GradMetric = ctx.selections.gradMetric === 'ratio' ? 'ratio' : 'grad';
  const flagged = r.parameters.filter((p) => p.flag);
  const newtonOver = r.newton.filter((n) => overRule(n.relativeDifference));
  const one = r.items.length === 1 ? r.items[0]! : null;
  const t = r.totals;

  root.appendChild(
    h(
      'div',
      { className: 'summary' },
      h(
        'div',
        { className: 'lead-row' },
        h(
          'p',
          { className: 'lead' },
          `Gradients of one training step of ${r.model}: the loss against the given class, and the L2 norm of its gradient for every parameter and for the input (no optimizer step).`,
        ),
        rerunButton(ctx, 'grad', 'Compute again'),
      ),
      facts(
        [
          ['Model', `${r.model}, ${r.numClasses} classes`],
          [
            'Weights',
            [r.weights, r.checkpoint ? null : [' ', badge('random weights', 'warn', 'Not a trained model')]].flat(),
          ],
          ['Input', `batch ${r.input.batch}, ${r.input.height}×${r.input.width}; ${r.input.transform}`],
          ['Loss', `${r.loss.toPrecision(6)} — ${r.lossDefinition}`],
          one
            ? [
                'Label → predicted',
                `label ${one.label} (${one.labelName}); predicted ${one.predicted.index} (${one.predicted.label}, ${formatProbability(one.predicted.probability)})`,
              ]
            : [
                'Labels → predicted',
                r.items.map((it) => `${it.label} → ${it.predicted.index}`).join(', ') + ' (see Items)',
              ],
          ['Runtime', `${r.runtime.runtime} on ${r.runtime.device}`],
          ['Arithmetic', r.dtype],
          ['Mode', modeText(r)],
          ['Newton backward', newtonBackwardText(r)],
          [
            'Totals',
            `${t.parameters} tensors, ${formatInt(t.elements)} elements: ‖grad‖ ${formatSci(t.gradNorm, 3)}, ‖param‖ ${formatSci(t.paramNorm, 3)}, median ‖grad‖ ${formatSci(t.medianGradNorm, 3)}`,
          ],
          [
            'Flags',
            r.warnings.length
              ? badge(
                  `${flagged.length} parameter${flagged.length === 1 ? '' : 's'}, ${newtonOver.length} stage${newtonOver.length === 1 ? '' : 's'} flagged`,
                  'warn',
                )
              : badge('none flagged', 'ok'),
          ],
          [
            'Time',
            `checkpoint ${formatMs(r.timingMs.checkpoint)}, preprocess ${formatMs(r.timingMs.preprocess)}, graph ${formatMs(r.timingMs.build)}, forward + backward ${formatMs(r.timingMs.run)}${r.newton.length ? `, Newton check ${formatMs(r.timingMs.newtonCheck)}` : ''}`,
          ],
        ],
        'facts facts--grid',
      ),
    ),
  );

  const metricId = nextId('grad-metric');
  const select = h('select', { id: metricId });
  for (const m of ['grad', 'ratio'] as const)
    select.appendChild(
      h('option', { value: m }, m === 'grad' ? '‖grad‖ — gradient L2 norm' : '‖grad‖ / ‖param‖ — relative step'),
    );
  select.value = metric;
  const controls = h('div', { className: 'controls' }, h('label', { for: metricId }, 'Plot '), select);
  const grid = h('div', { className: 'chart-grid chart-grid--single' });
  root.append(section('Per parameter', controls, grid));
  const card: ChartCard = chartCard(grid, normsSpec(r, metric));
  select.addEventListener('change', () => {
    metric = select.value === 'ratio' ? 'ratio' : 'grad';
    card.update(normsSpec(r, metric));
    ctx.selections.gradMetric = metric;
    ctx.persist();
    ctx.announce(`Showing ${METRIC_SHORT[metric]}`);
  });

  const warnings = h(
    'div',
    null,
    h('p', null, `Rule: ${r.rule}.`),
    r.warnings.length
      ? h(
          'ul',
          { className: 'notes grad-warnings' },
          ...r.warnings.map((w) =>
            h('li', null, badge(w.kind, WARNING_BADGE[w.kind] ?? 'warn'), ' ', ...prose(w.message)),
          ),
        )
      : h('p', { className: 'muted grad-warnings' }, 'None: no parameter and no stage is flagged under the rule.'),
  );
  root.appendChild(section('Warnings', warnings));

  const lower = chartGrid();
  root.appendChild(
    section(
      'Input gradient and SOFT’s Newton backward',
      r.newtonBackward === 'analytic'
        ? null
        : h('p', { className: 'muted' }, `SOFT Newton inverse: ${newtonBackwardText(r)}.`),
      lower,
    ),
  );
  chartCard(lower, inputSpec(r));
  if (r.newton.length) {
    chartCard(lower, newtonSpec(r));
    root.appendChild(section('SOFT stages', newtonTable(ctx, r).element));
  }
  root.appendChild(section('Items', itemsTable(ctx, r).element));
  root.appendChild(section('Parameters', parametersTable(ctx, r).element));
  if (r.notes.length)
    root.appendChild(
      section('Notes', h('ul', { className: 'notes' }, ...r.notes.map((n) => h('li', null, ...prose(n))))),
    );
  return { update() {} };
}
