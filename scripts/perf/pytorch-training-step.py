#!/usr/bin/python3
"""PyTorch eager autograd side of scripts/perf/training-vs-pytorch.ts: one training step (forward with
requires_grad on the input and every parameter, then torch.autograd.backward from the output with a
fixed cotangent) of a ViT Lens forward program, timed on the CPU.

The program is the one ViT Lens runs everywhere (server/core/engine/lowerings/torch.ts, JSON nodes
over tensor ids with its weights as float32 buffers); each op is evaluated by the PyTorch runtime's
own interpreter (Program.evaluate of server/runtimes/torch/vitlens_torch.py), so the forward maths is
identical and the backward is torch's own derivatives of torch's ops. Where the graph carries a custom
gradient (SOFT's Newton inverse trained with the analytic gradient), the region it covers runs inside
a torch.autograd.Function written like the official `_NewtonInverseKernel`: the iterations run forward
only (no autograd graph through them) and the backward returns -V^T G V^T.

  /usr/bin/python3 scripts/perf/pytorch-training-step.py DIR [--threads N] [--budget-ms MS]

DIR holds program.json (the program, its custom-gradient regions, input files), buffers.bin (the
program's buffers, float32, in order), and the input files; the script writes DIR/result.json (the
timing summary, the environment, and which gradients grads.bin holds) and DIR/grads.bin (float32).
Timing: 3 untimed steps, then steps timed one by one with time.perf_counter until at least
--budget-ms and 10 steps have passed (at most 500); median, p10, p90 are linear-interpolation
percentiles, as server/jobs/bench/stats.ts computes them.
"""

import argparse
import json
import os
import platform
import sys
import time

ARGS = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
ARGS.add_argument("dir")
ARGS.add_argument("--threads", type=int, default=None)
ARGS.add_argument("--budget-ms", type=float, default=4000)
ARGS = ARGS.parse_args()
THREADS = ARGS.threads or len(os.sched_getaffinity(0))
# Sized before torch loads (OpenBLAS reads its pool size at load), passive OpenMP waiting: as the
# PyTorch runtime starts its Python (server/runtimes/torch/process.ts), unless the caller set them.
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, str(THREADS))
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402

torch.set_num_threads(THREADS)
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "server", "runtimes", "torch"))
import vitlens_torch  # noqa: E402  (reassigns sys.stdout to stderr: this script prints nothing to stdout)


class NewtonInverseKernel(torch.autograd.Function):
    """The official `_NewtonInverseKernel`'s scheme: V from the Newton iterations, computed in forward
    (autograd records nothing inside a Function's forward), and dL/dA = -V^T G V^T in backward."""

    @staticmethod
    def forward(ctx, a, run):
        v = run(a)
        ctx.save_for_backward(v)
        return v

    @staticmethod
    def backward(ctx, grad):
        (v,) = ctx.saved_tensors
        vt = v.transpose(-1, -2)
        return -(vt @ grad @ vt), None


def read_f32(path, shape=None):
    with open(path, "rb") as f:
        t = torch.frombuffer(bytearray(f.read()), dtype=torch.float32)
    return t.reshape(shape) if shape is not None else t


def percentile(sorted_xs, q):
    if len(sorted_xs) == 1:
        return sorted_xs[0]
    pos = (len(sorted_xs) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(sorted_xs) - 1)
    return sorted_xs[lo] + (sorted_xs[hi] - sorted_xs[lo]) * (pos - lo)


def main():
    with open(os.path.join(ARGS.dir, "program.json")) as f:
        spec = json.load(f)
    program = spec["program"]
    raw = read_f32(os.path.join(ARGS.dir, "buffers.bin"))
    blobs, at = [], 0
    for b in program["buffers"]:
        n = 1
        for d in b["shape"]:
            n *= d
        blobs.append(raw[at : at + n].numpy().tobytes())
        at += n
    p = vitlens_torch.Program(torch, {"program": program, "device": "cpu"}, blobs)
    nodes = program["nodes"]
    (out_id,) = program["outputs"]
    x_spec = next(i for i in program["inputs"] if i["name"] == spec["x"]["name"])
    x = read_f32(os.path.join(ARGS.dir, spec["x"]["file"]), x_spec["shape"]).clone().requires_grad_(True)
    out_shape = next(n["shape"] for n in nodes if n["id"] == out_id)
    cotangent = read_f32(os.path.join(ARGS.dir, spec["cotangent"]["file"]), out_shape).clone()

    # Parameters: every weight node, a leaf that requires grad (a key read twice is two leaves, summed below).
    params = {}
    keys = {}
    for n in nodes:
        if n["op"] == "weight":
            params[n["id"]] = p.resident[n["id"]].clone().requires_grad_(True)
            keys[n["id"]] = n["key"]
    constants = {i: t for i, t in p.resident.items() if i not in params}

    # Custom-gradient regions: their nodes run inside NewtonInverseKernel.forward; the main loop skips
    # those nothing outside the region reads ("inner").
    regions = {r["output"]: r for r in spec["regions"]}
    inner = set()
    for r in spec["regions"]:
        inner.update(r["inner"])
    by_id = {n["id"]: n for n in nodes}

    # After node i the tensors whose last reader it is are dropped; a region reads at its output node.
    last_use = {}
    for i, n in enumerate(nodes):
        if n["id"] in inner:
            continue
        reads = vitlens_torch._operands(n)
        if n["id"] in regions:
            r = regions[n["id"]]
            inside = set(r["nodes"])
            reads = [ref for j in r["nodes"] for ref in vitlens_torch._operands(by_id[j]) if ref not in inside]
            reads += r["inputs"]
        for ref in reads:
            last_use[ref] = i
    frees = [[] for _ in nodes]
    for ref, i in last_use.items():
        if ref != out_id:
            frees[i].append(ref)

    def run_region(r, outer, a):
        env = dict(outer)
        env[r["inputs"][0]] = a
        for j in r["nodes"]:
            env[j] = p.evaluate(by_id[j], env)
        return env[r["output"]]

    def step():
        x.grad = None
        for t in params.values():
            t.grad = None
        env = dict(constants)
        env.update(params)
        env[x_spec["id"]] = x
        for i, n in enumerate(nodes):
            nid = n["id"]
            if nid in inner:
                continue
            if nid in regions:
                r = regions[nid]
                env[nid] = NewtonInverseKernel.apply(env[r["inputs"][0]], lambda a, r=r, env=env: run_region(r, env, a))
            elif nid not in env:
                env[nid] = p.evaluate(n, env)
            for ref in frees[i]:
                env.pop(ref, None)
        y = env[out_id]
        torch.autograd.backward(y, cotangent)
        return y

    for _ in range(3):
        step()
    samples = []
    started = time.perf_counter()
    while len(samples) < 500:
        t0 = time.perf_counter()
        step()
        samples.append((time.perf_counter() - t0) * 1000)
        if len(samples) >= 10 and (time.perf_counter() - started) * 1000 >= ARGS.budget_ms:
            break
    xs = sorted(samples)
    median = percentile(xs, 0.5)
    summary = {
        "n": len(xs),
        "median": median,
        "p10": percentile(xs, 0.1),
        "p90": percentile(xs, 0.9),
        "min": xs[0],
        "max": xs[-1],
        "relSpread": (percentile(xs, 0.9) - percentile(xs, 0.1)) / median,
    }

    # The gradients of the last step, by name: d/dx, then d/d<key> per parameter key (summed over its leaves).
    grads = [("d/dx", x.grad)]
    by_key = {}
    for i, t in params.items():
        g = t.grad if t.grad is not None else torch.zeros_like(t)
        by_key[keys[i]] = g if keys[i] not in by_key else by_key[keys[i]] + g
    grads += [("d/d" + k, g) for k, g in by_key.items()]
    with open(os.path.join(ARGS.dir, "grads.bin"), "wb") as f:
        for _, g in grads:
            f.write(g.detach().float().contiguous().numpy().tobytes())
    result = {
        "timingMs": summary,
        "grads": [{"name": name, "numel": g.numel()} for name, g in grads],
        "customGradients": len(spec["regions"]),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "threads": torch.get_num_threads(),
        "blas": _blas(),
    }
    with open(os.path.join(ARGS.dir, "result.json"), "w") as f:
        json.dump(result, f)


def _blas():
    """Which BLAS is mapped into this process (Debian's torch links libblas.so.3: OpenBLAS or the slow reference)."""
    try:
        with open("/proc/self/maps") as f:
            libs = sorted({line.split()[-1] for line in f if "blas" in line.lower() or "mkl" in line.lower()})
    except OSError:
        return None
    return [os.path.basename(lib) for lib in libs]


if __name__ == "__main__":
    main()
