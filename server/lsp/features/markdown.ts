/** Markdown renderings of a profile, shared by hover and the CLI's text output. */
import type { ModelSpec } from '../../core/models/spec';
import { README_CONVENTION, README_CONVENTION_NOTE } from '../../core/profile/categories';
import { bytes, conventionRows, gflops, gmacs, grouped, millions } from '../../core/profile/format';
import type { ModelProfile } from '../../core/profile/profile';

export function stageTable(p: ModelProfile): string {
  const rows = [
    '| stage | attention | grid | tokens | landmarks | dim | heads | depth | params | GMACs (B) |',
    '|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const s of p.stages) {
    if (s.group === 'top_level') {
      rows.push(`| pos. embed | | | | | | | | ${millions(s.params)} | ${(s.macsByConvention.B / 1e9).toFixed(3)} |`);
      continue;
    }
    if (s.group === 'head') {
      rows.push(`| head | | | | | | | | ${millions(s.params)} | ${(s.macsByConvention.B / 1e9).toFixed(3)} |`);
      continue;
    }
    rows.push(
      `| ${s.stage} | ${s.attention} | ${s.grid}×${s.grid} | ${s.tokens} | ${s.landmarks ?? '–'} | ${s.dim} | ${s.heads} | ${s.depth} | ${millions(s.params)} | ${(s.macsByConvention.B / 1e9).toFixed(3)} |`,
    );
  }
  return rows.join('\n');
}

export function conventionTable(p: ModelProfile): string {
  const rows = ['| convention | counts | GMACs | GFLOPs (= 2×MACs) |', '|---|---|---|---|'];
  for (const r of conventionRows(p)) {
    const mark = r.convention === README_CONVENTION ? ' ← README' : '';
    rows.push(`| ${r.convention}${mark} | ${r.label} | ${(r.macs / 1e9).toFixed(3)} | ${(2 * r.macs / 1e9).toFixed(3)} |`);
  }
  return rows.join('\n');
}

export function modelMarkdown(spec: ModelSpec, p: ModelProfile): string {
  const parts: string[] = [];
  parts.push(`**${spec.name}** — ${spec.title}`);
  for (const n of spec.notes) parts.push(`> ⚠ ${n}`);
  parts.push(
    `**${grouped(p.params)} parameters** (${millions(p.params)}) · **${gmacs(p.macsByConvention[README_CONVENTION])}** (convention ${README_CONVENTION}) = ${gflops(p.macsByConvention[README_CONVENTION])} · input ${p.resolution}×${p.resolution}, batch ${p.batch}`,
  );
  if (spec.published) {
    parts.push(`Published (${spec.published.source}): ${spec.published.params} params, ${spec.published.gflops} "GFLOPs" (GMACs), top-1 ${spec.published.top1} %.`);
  }
  parts.push(stageTable(p));
  parts.push(conventionTable(p));
  parts.push(README_CONVENTION_NOTE);
  const newton = `Newton–Raphson inverse: variant ${spec.newton.variant}, ${spec.newton.maxIter} iterations — ${spec.newton.variantSource}.`;
  parts.push(p.newtonIsLowerBound ? `${newton} Variant B's alpha back-off adds one m³ matmul per halving (data dependent): its Newton MACs are a lower bound.` : newton);
  const m = p.memory;
  parts.push(
    `Memory (estimate, float32, inference): weights ${bytes(m.parameterBytes)} + buffers ${bytes(m.bufferBytes)} + peak activations ${bytes(m.peakActivationBytes)} (at \`${m.peakAt}\`) = **${bytes(m.peakTotalBytes)}**.`,
  );
  return parts.join('\n\n');
}
