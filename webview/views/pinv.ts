/**
 * Pseudo-inverse view: Newton–Schulz convergence of SOFT's K₂⁺ per stage and head. The user
 * picks stage and head (selects; also a "Show" button per row of the heads table); the chart
 * plots residual, Penrose and exact error (distinct dashes and point shapes) with the
 * spectrum-predicted curve overlaid, a vertical marker at the configured iteration count
 * (newton_maxiter) and the 1e-3 / 1e-6 thresholds.
 */
import type { PointStyle } from 'chart.js';
import { attentionName, formatSci, sig } from '../../protocol/format';
import type { PinvHead, PinvReport, PinvStage } from '../../protocol/results';
import { axis, chartCard, options, type ChartCard, type ChartSpec } from '../charts';
import { clear, h, nextId, prose } from '../dom';
import { Table } from '../table';
import {
  badge,
  emptyState,
  facts,
  rerunButton,
  section,
  tableSort,
  type ViewContext,
  type ViewInstance,
} from './common';

export const THRESHOLDS = [1e-3, 1e-6];

const MEASURES = [
  { key: 'residual', label: 'residual ‖I − P·V_k‖_F', dash: [] as number[], point: 'circle', color: 'blue' },
  { key: 'penrose', label: 'Penrose ‖A·V_k·A − A‖_F / ‖A‖_F', dash: [8, 4], point: 'rect', color: 'orange' },
  { key: 'exactError', label: 'exact error ‖V_k − P⁻¹‖_F / ‖P⁻¹‖_F', dash: [2, 3], point: 'triangle', color: 'green' },
  {
    key: 'predicted',
    label: 'predicted ‖I − P·V_k‖₂ (from the spectrum)',
    dash: [4, 4],
    point: 'crossRot',
    color: 'purple',
  },
] as const;

const positive = (v: number | null): number | null => (v != null && Number.isFinite(v) && v > 0 ? v : null);

function convergenceSpec(r: PinvReport, s: PinvStage, hd: PinvHead): ChartSpec {
  const measured = hd.iterations.flatMap((it) =>
    [it.residual, it.penrose, it.exactError].map(positive).filter((v): v is number => v != null),
  );
  const lo = Math.min(...measured, ...THRESHOLDS);
  const hi = Math.max(...measured, 1);
  const yMin = 10 ** (Math.floor(Math.log10(lo)) - 1);
  const yMax = 10 ** Math.ceil(Math.log10(hi));
  const kMax = Math.max(r.iterations, ...hd.iterations.map((i) => i.k));
  return {
    id: 'pinv-convergence',
    title: `Convergence — stage ${s.stage}, head ${hd.head}`,
    description: `Newton–Schulz iteration on the ${hd.m}×${hd.m} landmark kernel (variant ${r.variant}, ${r.arithmetic} arithmetic; measures in float64). Log scale; the predicted curve assumes exact arithmetic.`,
    size: 'tall',
    build: (t) => ({
      type: 'line',
      data: {
        datasets: MEASURES.map((m) => {
          const color = t[m.color];
          const predicted = m.key === 'predicted';
          return {
            label: m.label,
            // null y = a gap (a value ≤ 0 has no place on a log axis).
            data: hd.iterations.map((it) => ({ x: it.k, y: positive(it[m.key]) })) as { x: number; y: number }[],
            borderColor: color,
            backgroundColor: color,
            borderDash: [...m.dash],
            pointStyle: m.point as PointStyle,
            pointRadius: predicted ? 3 : 3.5,
            pointHoverRadius: 6,
            borderWidth: predicted ? 1.5 : 2,
            spanGaps: false,
          };
        }),
      },
      options: options(t, {
        scales: {
          x: {
            ...axis(t, 'Newton iteration k'),
            type: 'linear',
            min: 0,
            max: kMax,
            ticks: { color: t.foreground, stepSize: kMax > 30 ? 5 : 1, precision: 0 },
          },
          y: {
            ...axis(t, 'Error (log)'),
            type: 'logarithmic',
            min: yMin,
            max: yMax,
            ticks: {
              color: t.foreground,
              callback: (v: number | string) =>
                Math.abs(Math.log10(Number(v)) - Math.round(Math.log10(Number(v)))) < 1e-9
                  ? formatSci(Number(v), 0)
                  : '',
            },
          },
        },
        plugins: {
          vitlensGuides: {
            color: t.foreground,
            font: `${Math.max(11, Math.round(t.fontSize * 0.92))}px ${t.fontFamily}`,
            vertical: [{ value: r.iterations, label: `newton_maxiter = ${r.iterations}` }],
            horizontal: THRESHOLDS.map((v) => ({ value: v, label: formatSci(v, 0) })),
          },
          tooltip: {
            callbacks: {
              title: (items: { parsed: { x: number } }[]) => `k = ${items[0]?.parsed.x}`,
              label: (c: { dataset: { label?: string }; parsed: { y: number | null } }) =>
                `${c.dataset.label}: ${c.parsed.y == null ? '—' : formatSci(c.parsed.y, 2)}`,
            },
          },
        },
      }),
    }),
    summary: () => {
      const last = hd.iterations[hd.iterations.length - 1];
      return `Log-scale line chart of Newton–Schulz errors against iteration for stage ${s.stage}, head ${hd.head}: ${hd.verdict}. After ${last?.k ?? 0} iterations the residual is ${formatSci(last?.residual)}, Penrose ${formatSci(last?.penrose)}, exact error ${formatSci(last?.exactError)}. Vertical marker at newton_maxiter = ${r.iterations}; thresholds 1e-3 and 1e-6.`;
    },
    table: () => ({
      columns: ['k', 'Residual', 'Penrose', 'Exact error', 'Predicted'],
      rows: hd.iterations.map((it) => [
        it.k,
        formatSci(it.residual, 3),
        formatSci(it.penrose, 3),
        formatSci(it.exactError, 3),
        formatSci(it.predicted, 3),
      ]),
    }),
    note: () => {
      const clipped =
        hd.iterations.filter((it) => it.predicted > 0 && it.predicted < yMin).length +
        hd.iterations.filter((it) => !(it.predicted > 0)).length;
      return clipped
        ? `The predicted curve leaves the plotted range (below ${formatSci(yMin, 0)}) at ${clipped} iteration(s); exact values are in the data table.`
        : null;
    },
  };
}

interface HeadRow {
  stage: PinvStage;
  head: PinvHead;
}

function reachText(hd: PinvHead, threshold: string): string {
  const r = hd.reaches[threshold];
  if (!r) return '—';
  const f = (v: number | null): string => (v == null ? 'never' : String(v));
  return `res ${f(r.residual)} · pen ${f(r.penrose)} · exact ${f(r.exactError)}`;
}

export function renderPinv(ctx: ViewContext, root: HTMLElement): ViewInstance {
  const r = ctx.data().pinv;
  if (!r) {
    root.appendChild(
      emptyState(
        'No pseudo-inverse report yet',
        'No pseudo-inverse report yet — run `vitlens pinv <config>` or use the Pseudo-inverse convergence CodeLens.',
        { ctx, view: 'pinv', label: 'Run pseudo-inverse check' },
      ),
    );
    return { update() {} };
  }
  const live = r.stages.filter((s) => !s.skipped && s.heads.length > 0);
  const skipped = r.stages.filter((s) => s.skipped || s.heads.length === 0);

  root.appendChild(
    h(
      'div',
      { className: 'summary' },
      h(
        'div',
        { className: 'lead-row' },
        h('p', { className: 'lead' }, ...prose(r.summary)),
        rerunButton(ctx, 'pinv', 'Run check again'),
      ),
      facts(
        [
          ['Model', `${r.model} at ${r.resolution}×${r.resolution}`],
          ['Variant', `${r.variant}`],
          ['newton_maxiter', String(r.iterations)],
          ['Arithmetic', `${r.arithmetic} (measures in float64)`],
          ['Weights', r.weights],
          ['Input', r.input],
        ],
        'facts facts--grid',
      ),
      h('p', { className: 'muted' }, ...prose(r.variantSource)),
    ),
  );

  if (!live.length) {
    root.appendChild(
      section(
        'Stages',
        h(
          'ul',
          { className: 'skipped' },
          ...skipped.map((s) =>
            h('li', null, `Stage ${s.stage} (${attentionName(s.attention)}): skipped — ${s.skipped ?? 'no matrices'}`),
          ),
        ),
      ),
    );
    return { update() {} };
  }

  // Selection (restored from state when it still exists).
  let stage = live.find((s) => s.stage === ctx.selections.pinvStage) ?? live[0]!;
  let head = stage.heads.find((x) => x.head === ctx.selections.pinvHead) ?? stage.heads[0]!;

  const stageId = nextId('pinv-stage');
  const headId = nextId('pinv-head');
  const stageSelect = h('select', { id: stageId });
  for (const s of r.stages) {
    const opt = h(
      'option',
      { value: String(s.stage) },
      `Stage ${s.stage} · ${attentionName(s.attention)} · ${s.grid}×${s.grid} grid · ${s.landmarks} landmarks${s.skipped ? ' (skipped)' : ''}`,
    );
    if (s.skipped || !s.heads.length) opt.disabled = true;
    stageSelect.appendChild(opt);
  }
  const headSelect = h('select', { id: headId });
  const verdict = h('p', { className: 'verdict', 'aria-live': 'polite' });
  const controls = h(
    'div',
    { className: 'controls' },
    h('label', { for: stageId }, 'Stage '),
    stageSelect,
    h('label', { for: headId }, 'Head '),
    headSelect,
  );
  const chartHost = h('div', { className: 'chart-grid chart-grid--single' });
  root.append(section('Convergence', controls, verdict, chartHost));

  const fillHeads = (): void => {
    clear(headSelect);
    for (const x of stage.heads)
      headSelect.appendChild(
        h('option', { value: String(x.head) }, `Head ${x.head}${x.converged ? '' : ' (not converged)'}`),
      );
    headSelect.value = String(head.head);
  };
  const showVerdict = (): void => {
    clear(verdict);
    verdict.append(
      badge(head.converged ? 'converged' : 'not converged', head.converged ? 'ok' : 'error'),
      ' ',
      `Stage ${stage.stage}, head ${head.head}: ${head.verdict}.`,
      head.predictedIterations != null ? ` Predicted from the spectrum: ${head.predictedIterations} iterations.` : '',
    );
  };
  stageSelect.value = String(stage.stage);
  fillHeads();
  showVerdict();
  const card: ChartCard = chartCard(chartHost, convergenceSpec(r, stage, head));

  const select = (s: PinvStage, hd: PinvHead, announce = false): void => {
    stage = s;
    head = hd;
    stageSelect.value = String(s.stage);
    fillHeads();
    showVerdict();
    card.update(convergenceSpec(r, stage, head));
    ctx.selections.pinvStage = s.stage;
    ctx.selections.pinvHead = hd.head;
    ctx.persist();
    if (announce) ctx.announce(`Showing stage ${s.stage}, head ${hd.head}`);
  };
  stageSelect.addEventListener('change', () => {
    const s = live.find((x) => String(x.stage) === stageSelect.value);
    if (s) select(s, s.heads.find((x) => x.head === head.head) ?? s.heads[0]!);
  });
  headSelect.addEventListener('change', () => {
    const hd = stage.heads.find((x) => String(x.head) === headSelect.value);
    if (hd) select(stage, hd);
  });

  const rows: HeadRow[] = r.stages.flatMap((s) => s.heads.map((hd) => ({ stage: s, head: hd })));
  const table = new Table<HeadRow>({
    id: 'pinv-heads',
    caption: 'Every stage and head',
    ...tableSort(ctx, 'pinv-heads'),
    rowClass: (x) => (x.head.converged ? null : 'row--failed'),
    columns: [
      { key: 'stage', label: 'Stage', numeric: true, value: (x) => x.stage.stage },
      { key: 'head', label: 'Head', numeric: true, value: (x) => x.head.head },
      { key: 'm', label: 'm', title: 'Landmarks (matrix size)', numeric: true, value: (x) => x.head.m },
      {
        key: 'alpha',
        label: 'α',
        title: 'Initial step size',
        numeric: true,
        value: (x) => x.head.alpha,
        format: (x) => sig(x.head.alpha, 4),
      },
      {
        key: 'backoff',
        label: 'Back-offs',
        title: 'Variant B step-size halvings',
        numeric: true,
        value: (x) => x.head.backoffHalvings,
      },
      {
        key: 'cond',
        label: 'Condition number',
        numeric: true,
        value: (x) => x.head.conditionNumber,
        format: (x) => sig(x.head.conditionNumber, 4),
      },
      {
        key: 'eig',
        label: 'Eigenvalue range',
        numeric: true,
        value: (x) => x.head.eigenvalueRange[0],
        format: (x) => `[${sig(x.head.eigenvalueRange[0], 4)}, ${sig(x.head.eigenvalueRange[1], 4)}]`,
      },
      {
        key: 'r3',
        label: 'Reaches 1e-3 at',
        value: (x) => x.head.reaches['1e-3']?.residual ?? null,
        format: (x) => reachText(x.head, '1e-3'),
      },
      {
        key: 'r6',
        label: 'Reaches 1e-6 at',
        value: (x) => x.head.reaches['1e-6']?.residual ?? null,
        format: (x) => reachText(x.head, '1e-6'),
      },
      { key: 'pred', label: 'Predicted iterations', numeric: true, value: (x) => x.head.predictedIterations },
      {
        key: 'verdict',
        label: 'Verdict',
        value: (x) => x.head.verdict,
        format: (x) =>
          h(
            'span',
            null,
            badge(x.head.converged ? 'ok' : 'no', x.head.converged ? 'ok' : 'error'),
            ' ',
            x.head.verdict,
          ),
      },
      {
        key: 'show',
        label: 'Chart',
        sortable: false,
        value: () => null,
        format: (x) => {
          const b = h(
            'button',
            {
              type: 'button',
              className: 'btn btn--small',
              'aria-label': `Show stage ${x.stage.stage}, head ${x.head.head} in the chart`,
            },
            'Show',
          );
          b.addEventListener('click', () => {
            select(x.stage, x.head, true);
            stageSelect.focus();
          });
          return b;
        },
      },
    ],
  });
  table.setRows(rows);
  root.appendChild(section('Heads', table.element));
  if (skipped.length)
    root.appendChild(
      section(
        'Skipped stages',
        h(
          'ul',
          { className: 'skipped' },
          ...skipped.map((s) =>
            h('li', null, `Stage ${s.stage} (${attentionName(s.attention)}): ${s.skipped ?? 'no matrices'}`),
          ),
        ),
      ),
    );
  return { update() {} };
}
