/**
 * Collects what a model walk produces: state_dict tensors, ops with their MAC and
 * element-wise counts, and a live-activation trace for the peak-memory estimate.
 */
import type { ElementwiseKind, MacCategory, OpKind } from '../../../protocol/categories';

export interface TensorEntry {
  key: string;
  shape: number[];
  /** Parameters count toward `sum(p.numel())`; buffers (BN statistics) do not. */
  role: 'parameter' | 'buffer';
  dtype: 'float32' | 'int64';
}

export interface OpRecord {
  /** Module path in state_dict naming (`block1.0.att.mha.W_q`). */
  path: string;
  /** Aggregation group: `stage1`…`stageN`, `top_level` (positional embeddings) or `head`. */
  group: string;
  /** 1-based stage, 0 for top-level code and the head. */
  stage: number;
  /** Block index inside the stage, or -1 outside blocks. */
  block: number;
  kind: OpKind;
  /** Human name of the op (`K1 = exp(−dist(Q,L)/2)`). */
  label: string;
  category: MacCategory | null;
  macs: number;
  params: number;
  elementwise: Partial<Record<ElementwiseKind, number>>;
  /** Elements of the op's output tensor. */
  outputElems: number;
  /** Activation elements live while this op runs (held tensors + inputs + output). */
  liveElems: number;
}

export interface Location {
  group: string;
  stage: number;
  block: number;
}

export interface OpInput {
  path: string;
  kind: OpKind;
  label: string;
  category?: MacCategory;
  macs?: number;
  params?: number;
  elementwise?: Partial<Record<ElementwiseKind, number>>;
  outputElems: number;
  /** Elements of inputs not already held (usually the op's direct input). */
  inputElems?: number;
}

/** A live activation kept by `Recorder.hold`. */
export interface Held {
  readonly elems: number;
  live: boolean;
}

export class Recorder {
  readonly tensors: TensorEntry[] = [];
  readonly ops: OpRecord[] = [];
  /** Handles held since the last `releaseAll` (a few per block). */
  private readonly held: Held[] = [];
  private heldTotal = 0;
  location: Location = { group: 'top_level', stage: 0, block: -1 };

  tensor(
    key: string,
    shape: number[],
    role: TensorEntry['role'] = 'parameter',
    dtype: TensorEntry['dtype'] = 'float32',
  ): number {
    this.tensors.push({ key, shape, role, dtype });
    return role === 'parameter' ? shape.reduce((a, b) => a * b, 1) : 0;
  }

  op(o: OpInput): void {
    const live = this.heldTotal + (o.inputElems ?? 0) + o.outputElems;
    this.ops.push({
      path: o.path,
      group: this.location.group,
      stage: this.location.stage,
      block: this.location.block,
      kind: o.kind,
      label: o.label,
      category: o.category ?? null,
      macs: o.macs ?? 0,
      params: o.params ?? 0,
      elementwise: o.elementwise ?? {},
      outputElems: o.outputElems,
      liveElems: live,
    });
  }

  /**
   * Keep a tensor alive across the following ops (a residual, K1 until the apply matmuls, …)
   * and return its handle for `release`. Handles rather than named entries: the walk used to
   * build a `${path}:name` string per hold and release and look it up in a Map, which cost
   * more than the arithmetic; a handle is unique by construction and needs no lookup.
   */
  hold(elems: number): Held {
    const h: Held = { elems, live: true };
    this.held.push(h);
    this.heldTotal += elems;
    return h;
  }

  /** Stop counting a held tensor; releasing twice (or after `releaseAll`) is a no-op. */
  release(h: Held): void {
    if (h.live) {
      this.heldTotal -= h.elems;
      h.live = false;
    }
  }

  /** End of a block: nothing it held outlives it. */
  releaseAll(): void {
    for (const h of this.held) h.live = false;
    this.held.length = 0;
    this.heldTotal = 0;
  }
}
