/**
 * Pseudo-inverse view: Newton–Schulz convergence of SOFT's K₂⁺ per stage and head, and
 * Nyströmformer's third-order iteration on its A = softmax(Q̃K̃ᵀ) in stages that run it. The user
 * picks stage and head (selects; also a "Show" button per row of the heads table); the chart
 * plots residual, Penrose and exact error (distinct dashes and point shapes) with the
 * exact-arithmetic predicted curve overlaid, a vertical marker at the configured iteration count
 * (newton_maxiter, or nystrom_iterations for a Nyström stage) and the 1e-3 / 1e-6 thresholds.
 * When the report has Nyström stages, a second chart beside it draws every stage's worst-head
 * residual on one axis — solid for Newton, dashed for Nyström, each iteration's marker — so the
 * two iterations compare at a glance.
 */
import type { PointStyle } from 'chart.js';
import { attentionName, formatSci, sig } from '../../protocol/format';
import type { PinvHead, PinvMethod, PinvReport, PinvStage } from '../../protocol/results';
import {
  axis,
  chartCard,
  indexedStyle,
  options,
  positive,
  type ChartCard,
  type ChartSpec,
  type Guide,
} from '../charts';
import type { Theme } from '../theme';
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

const STYLES = [
  { key: 'residual', dash: [] as number[], point: 'circle', color: 'blue' },
  { key: 'penrose', dash: [8, 4], point: 'rect', color: 'orange' },
  { key: 'exactError', dash: [2, 3], point: 'triangle', color: 'green' },
  { key: 'predicted', dash: [4, 4], point: 'crossRot', color: 'purple' },
] as const;

/** The measures' words per iteration: P·V_k for Newton–Schulz on P, A·Z_k for Nyström on A. */
const LABELS: Record<PinvMethod['kind'], Record<(typeof STYLES)[number]['key'], string>> = {
  newton: {
    residual: 'residual ‖I − P·V_k‖_F',
    penrose: 'Penrose ‖A·V_k·A − A‖_F / ‖A‖_F',
    exactError: 'exact error ‖V_k − P⁻¹‖_F / ‖P⁻¹‖_F',
    predicted: 'predicted ‖I − P·V_k‖₂ (from the spectrum)',
  },
  nystrom: {
    residual: 'residual ‖I − A·Z_k‖_F',
    penrose: 'Penrose ‖A·Z_k·A − A‖_F / ‖A‖_F',
    exactError: 'exact error ‖Z_k − A⁻¹‖_F / ‖A⁻¹‖_F',
    predicted: 'predicted ‖I − A·Z_k‖₂ (from σ_min of A)',
  },
};

/** A stage's iteration; reports from before Nyström stages were analysed carry none and are all Newton. */
export function methodOf(r: PinvReport, s: PinvStage): PinvMethod {
  return (
    s.method ?? {
      kind: 'newton',
      label: `Newton–Raphson (variant ${r.variant}, ${r.iterations} iterations)`,
      setting: 'newton_maxiter',
      configured: r.iterations,
      traced: r.iterations,
    }
  );
}

const marker = (m: PinvMethod) => ({ value: m.configured, label: `${m.setting} = ${m.configured}` });

/** Decades that hold every measured value, the thresholds and 1, with a decade below to spare. */
function logRange(values: number[]): { min: number; max: number } {
  const lo = Math.min(...values, ...THRESHOLDS);
  const hi = Math.max(...values, 1);
  return { min: 10 ** (Math.floor(Math.log10(lo)) - 1), max: 10 ** Math.ceil(Math.log10(hi)) };
}

/** Both charts' axes: iterations on x, a log error axis labelled at whole decades, the iteration markers and the thresholds. */
function logOptions(
  t: Theme,
  o: { x: string; y: string; kMax: number; range: { min: number; max: number }; vertical: Guide[] },
): Record<string, unknown> {
  return options(t, {
    scales: {
      x: {
        ...axis(t, o.x),
        type: 'linear',
        min: 0,
        max: o.kMax,
        ticks: { color: t.foreground, stepSize: o.kMax > 30 ? 5 : 1, precision: 0 },
      },
      y: {
        ...axis(t, o.y),
        type: 'logarithmic',
        min: o.range.min,
        max: o.range.max,
        ticks: {
          color: t.foreground,
          callback: (v: number | string) =>
            Math.abs(Math.log10(Number(v)) - Math.round(Math.log10(Number(v)))) < 1e-9 ? formatSci(Number(v), 0) : '',
        },
      },
    },
    plugins: {
      vitlensGuides: {
        color: t.foreground,
        font: `${Math.max(11, Math.round(t.fontSize * 0.92))}px ${t.fontFamily}`,
        vertical: o.vertical,
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
  });
}

function convergenceSpec(r: PinvReport, s: PinvStage, hd: PinvHead): ChartSpec {
  const method = methodOf(r, s);
  const nystrom = method.kind === 'nystrom';
  const labels = LABELS[method.kind];
  const measured = hd.iterations.flatMap((it) =>
    [it.residual, it.penrose, it.exactError].map(positive).filter((v): v is number => v != null),
  );
  const range = logRange(measured);
  const kMax = Math.max(method.traced, method.configured, ...hd.iterations.map((i) => i.k));
  return {
    id: 'pinv-convergence',
    title: `Convergence — stage ${s.stage}, head ${hd.head}`,
    description: nystrom
      ? `Nyströmformer's third-order iteration on the ${hd.m}×${hd.m} landmark softmax A = softmax(Q̃K̃ᵀ), Z₀ = c·Aᵀ (${r.arithmetic} arithmetic; measures in float64). Log scale; the predicted curve assumes exact arithmetic.`
      : `Newton–Schulz iteration on the ${hd.m}×${hd.m} landmark kernel (variant ${r.variant}, ${r.arithmetic} arithmetic; measures in float64). Log scale; the predicted curve assumes exact arithmetic.`,
    size: 'tall',
    build: (t) => ({
      type: 'line',
      data: {
        datasets: STYLES.map((m) => {
          const color = t[m.color];
          const predicted = m.key === 'predicted';
          return {
            label: labels[m.key],
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
      options: logOptions(t, {
        x: nystrom ? 'Nyström iteration k' : 'Newton iteration k',
        y: 'Error (log)',
        kMax,
        range,
        vertical: [marker(method)],
      }),
    }),
    summary: () => {
      const last = hd.iterations[hd.iterations.length - 1];
      return `Log-scale line chart of ${nystrom ? "Nyströmformer's iteration" : 'Newton–Schulz'} errors against iteration for stage ${s.stage}, head ${hd.head}: ${hd.verdict}. After ${last?.k ?? 0} iterations the residual is ${formatSci(last?.residual)}, Penrose ${formatSci(last?.penrose)}, exact error ${formatSci(last?.exactError)}. Vertical marker at ${marker(method).label}; thresholds 1e-3 and 1e-6.`;
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
        hd.iterations.filter((it) => it.predicted > 0 && it.predicted < range.min).length +
        hd.iterations.filter((it) => !(it.predicted > 0)).length;
      return clipped
        ? `The predicted curve leaves the plotted range (below ${formatSci(range.min, 0)}) at ${clipped} iteration(s); exact values are in the data table.`
        : null;
    },
  };
}

const worstHead = (s: PinvStage): PinvHead =>
  s.heads.reduce((w, x) => (x.iterations.at(-1)!.residual > w.iterations.at(-1)!.residual ? x : w));

/**
 * Every live stage's worst head (largest final residual) on one axis, so SOFT's Newton–Raphson
 * and Nyströmformer's iteration are read side by side: colour per stage, and the iteration in
 * the dash and point shape (solid circles Newton, dashed diamonds Nyström) and in the legend.
 */
function methodsSpec(r: PinvReport, live: PinvStage[]): ChartSpec {
  const lines = live.map((s, i) => ({ s, method: methodOf(r, s), hd: worstHead(s), i }));
  const range = logRange(
    lines.flatMap((l) => l.hd.iterations.map((it) => positive(it.residual)).filter((v): v is number => v != null)),
  );
  const kMax = Math.max(...lines.flatMap((l) => [l.method.configured, ...l.hd.iterations.map((it) => it.k)]));
  const markers = [...new Map(lines.map((l) => [l.method.setting, marker(l.method)])).values()];
  const label = (l: (typeof lines)[number]) => `Stage ${l.s.stage} · ${l.method.label} · head ${l.hd.head}`;
  return {
    id: 'pinv-methods',
    title: `${new Set(lines.map((l) => l.method.kind)).size > 1 ? 'Both iterations' : 'Every stage'} — residual of each stage’s worst head`,
    description: `‖I − P·V_k‖_F for SOFT's Newton–Raphson, ‖I − A·Z_k‖_F for Nyströmformer's third-order iteration (${r.arithmetic} arithmetic). Solid: Newton; dashed: Nyström. Log scale.`,
    size: 'tall',
    build: (t) => ({
      type: 'line',
      data: {
        datasets: lines.map((l) => {
          const nystrom = l.method.kind === 'nystrom';
          const color = indexedStyle(l.i, t).color;
          return {
            label: label(l),
            data: l.hd.iterations.map((it) => ({ x: it.k, y: positive(it.residual) })) as { x: number; y: number }[],
            borderColor: color,
            backgroundColor: color,
            borderDash: nystrom ? [8, 4] : [],
            pointStyle: (nystrom ? 'rectRot' : 'circle') as PointStyle,
            pointRadius: 3.5,
            pointHoverRadius: 6,
            borderWidth: 2,
            spanGaps: false,
          };
        }),
      },
      options: logOptions(t, { x: 'Iteration k', y: 'Residual (log)', kMax, range, vertical: markers }),
    }),
    summary: () =>
      `Log-scale line chart of the residual against iteration for the worst head of every stage: ${lines
        .map(
          (l) =>
            `stage ${l.s.stage} (${l.method.label}) ${formatSci(l.hd.iterations.at(-1)?.residual)} after ${l.hd.iterations.at(-1)?.k ?? 0}`,
        )
        .join('; ')}. Vertical markers at ${markers.map((m) => m.label).join(' and ')}; thresholds 1e-3 and 1e-6.`,
    table: () => ({
      columns: ['k', ...lines.map(label)],
      rows: Array.from({ length: kMax + 1 }, (_, k) => [
        k,
        ...lines.map((l) => {
          const it = l.hd.iterations.find((x) => x.k === k);
          return it ? formatSci(it.residual, 3) : '—';
        }),
      ]),
    }),
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
  const nystromStage = r.stages.find((s) => methodOf(r, s).kind === 'nystrom');
  const newtonStage = r.stages.find((s) => methodOf(r, s).kind === 'newton');
  const hasNewton = r.stages.length === 0 || newtonStage !== undefined;
  // The config's counts, and the steps traced where a request asked for another number.
  const methods = r.stages.map((s) => methodOf(r, s));
  const traced = [...new Set(methods.filter((m) => m.traced !== m.configured).map((m) => m.traced))];

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
          ...(hasNewton
            ? ([
                ['Variant', `${r.variant}`],
                ['newton_maxiter', String(newtonStage ? methodOf(r, newtonStage).configured : r.iterations)],
              ] as [string, string][])
            : []),
          ...(nystromStage
            ? ([['nystrom_iterations', String(methodOf(r, nystromStage).configured)]] as [string, string][])
            : []),
          ...(traced.length ? ([['Traced', `${traced.join(', ')} iterations`]] as [string, string][]) : []),
          ['Arithmetic', `${r.arithmetic} (measures in float64)`],
          ['Weights', r.weights],
          ['Input', r.input],
        ],
        'facts facts--grid',
      ),
      hasNewton ? h('p', { className: 'muted' }, ...prose(r.variantSource)) : null,
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
  // With Nyström stages, the both-iterations chart sits beside the selected head's.
  const chartHost = h('div', { className: nystromStage ? 'chart-grid' : 'chart-grid chart-grid--single' });
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
      `Stage ${stage.stage}, head ${head.head} (${methodOf(r, stage).label}): ${head.verdict}.`,
      head.predictedIterations != null
        ? ` Predicted from ${methodOf(r, stage).kind === 'nystrom' ? 'the singular values of A' : 'the spectrum'}: ${head.predictedIterations} iterations.`
        : '',
    );
  };
  stageSelect.value = String(stage.stage);
  fillHeads();
  showVerdict();
  const card: ChartCard = chartCard(chartHost, convergenceSpec(r, stage, head));
  if (nystromStage) chartCard(chartHost, methodsSpec(r, live));

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
      ...(nystromStage
        ? [
            {
              key: 'iteration',
              label: 'Iteration',
              title:
                'The pseudo-inverse iteration the stage runs (its full name is in the stage select and the legend)',
              value: (x: HeadRow) => methodOf(r, x.stage).label,
              format: (x: HeadRow) => (methodOf(r, x.stage).kind === 'nystrom' ? 'Nyströmformer' : 'Newton–Raphson'),
            },
          ]
        : []),
      { key: 'm', label: 'm', title: 'Landmarks (matrix size)', numeric: true, value: (x) => x.head.m },
      {
        key: 'alpha',
        label: nystromStage ? 'α / c' : 'α',
        title: nystromStage ? 'Scale of the first iterate: Newton V₀ = α·P, Nyström Z₀ = c·Aᵀ' : 'Initial step size',
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
        label: nystromStage ? 'Spectrum' : 'Eigenvalue range',
        ...(nystromStage
          ? { title: 'Newton: eigenvalues λ of P; Nyström: singular values σ of A (not symmetric)' }
          : {}),
        numeric: true,
        value: (x) => x.head.eigenvalueRange[0],
        format: (x) =>
          `${nystromStage ? (methodOf(r, x.stage).kind === 'nystrom' ? 'σ ' : 'λ ') : ''}[${sig(x.head.eigenvalueRange[0], 4)}, ${sig(x.head.eigenvalueRange[1], 4)}]`,
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
