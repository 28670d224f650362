/** Markdown renderings of a profile, shared by hover and the CLI's text output. */
import {
  formatBytes,
  formatFlops,
  formatInt,
  formatMacs,
  formatParams,
  GIGA_COLUMN,
  REPORT_BYTES,
  REPORT_GIGA,
  REPORT_MILLIONS,
} from '../../../protocol/format';
import type { ModelSpec } from '../../core/models/spec';
import { README_CONVENTION, README_CONVENTION_NOTE } from '../../core/profile/categories';
import { conventionRows } from '../../core/profile/format';
import type { ModelProfile } from '../../core/profile/profile';

export function stageTable(p: ModelProfile): string {
  const rows = [
    '| stage | attention | grid | tokens | landmarks | dim | heads | depth | params | GMACs (B) |',
    '|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const s of p.stages) {
    if (s.group === 'top_level') {
      rows.push(
        `| pos. embed | | | | | | | | ${formatParams(s.params, REPORT_MILLIONS)} | ${formatMacs(s.macsByConvention.B, GIGA_COLUMN)} |`,
      );
      continue;
    }
    if (s.group === 'head') {
      rows.push(
        `| head | | | | | | | | ${formatParams(s.params, REPORT_MILLIONS)} | ${formatMacs(s.macsByConvention.B, GIGA_COLUMN)} |`,
      );
      continue;
    }
    rows.push(
      `| ${s.stage} | ${s.attention} | ${s.grid}×${s.grid} | ${s.tokens} | ${s.landmarks ?? '–'} | ${s.dim} | ${s.heads} | ${s.depth} | ${formatParams(s.params, REPORT_MILLIONS)} | ${formatMacs(s.macsByConvention.B, GIGA_COLUMN)} |`,
    );
  }
  return rows.join('\n');
}

export function conventionTable(p: ModelProfile): string {
  const rows = ['| convention | counts | GMACs | GFLOPs (= 2×MACs) |', '|---|---|---|---|'];
  for (const r of conventionRows(p)) {
    const mark = r.convention === README_CONVENTION ? ' ← README' : '';
    rows.push(
      `| ${r.convention}${mark} | ${r.label} | ${formatMacs(r.macs, GIGA_COLUMN)} | ${formatFlops(2 * r.macs, GIGA_COLUMN)} |`,
    );
  }
  return rows.join('\n');
}

export function modelMarkdown(spec: ModelSpec, p: ModelProfile): string {
  const parts: string[] = [];
  parts.push(`**${spec.name}** — ${spec.title}`);
  for (const n of spec.notes) parts.push(`> ⚠ ${n}`);
  parts.push(
    `**${formatInt(p.params, { group: ',' })} parameters** (${formatParams(p.params, REPORT_MILLIONS)}) · **${formatMacs(p.macsByConvention[README_CONVENTION], REPORT_GIGA)}** (convention ${README_CONVENTION}) = ${formatFlops(2 * p.macsByConvention[README_CONVENTION], REPORT_GIGA)} · input ${p.resolution}×${p.resolution}, batch ${p.batch}`,
  );
  if (spec.published) {
    parts.push(
      `Published (${spec.published.source}): ${spec.published.params} params, ${spec.published.gflops} "GFLOPs" (GMACs), top-1 ${spec.published.top1} %.`,
    );
  }
  parts.push(stageTable(p));
  parts.push(conventionTable(p));
  parts.push(README_CONVENTION_NOTE);
  const newton = `Newton–Raphson inverse: variant ${spec.newton.variant}, ${spec.newton.maxIter} iterations — ${spec.newton.variantSource}.`;
  parts.push(
    p.newtonIsLowerBound
      ? `${newton} Variant B's alpha back-off adds one m³ matmul per halving (data dependent): its Newton MACs are a lower bound.`
      : newton,
  );
  const m = p.memory;
  parts.push(
    `Memory (estimate, float32, inference): weights ${formatBytes(m.parameterBytes, REPORT_BYTES)} + buffers ${formatBytes(m.bufferBytes, REPORT_BYTES)} + peak activations ${formatBytes(m.peakActivationBytes, REPORT_BYTES)} (at \`${m.peakAt}\`) = **${formatBytes(m.peakTotalBytes, REPORT_BYTES)}**.`,
  );
  return parts.join('\n\n');
}
