#!/usr/bin/python3
"""PyTorch eager CPU baseline for the attention layers ViT Lens benchmarks.

Written from docs/MATHS.md (SOFT: section 1.2-1.5, UFO: section 5.3), not copied from
any repository, so the TypeScript/ORT numbers have an independent reference point that a
reader can rerun. Weights are random (seeded); timings do not depend on their values because
every loop has a fixed trip count (20 Newton iterations).

Run with Debian's interpreter, which has python3-torch 1.13 (a pyenv python3 on PATH may not):

  /usr/bin/python3 scripts/perf/pytorch-baseline.py --attention soft --tokens 3136 --dim 64 --heads 2 \
      --ratio 8 --conv 9 --iters 20 --threads 2 --reps 5 --json out.json
  /usr/bin/python3 scripts/perf/pytorch-baseline.py --attention soft --sweep --landmarks 49
  /usr/bin/python3 scripts/perf/pytorch-baseline.py --check

Timing: `--warmup` untimed calls, then `--reps` blocks of `--iters` calls; every call is timed
on its own with time.perf_counter and the summary (median, p10, p90; linear-interpolation
percentiles, numpy's default = server/jobs/bench/stats.ts) is over all reps x iters calls.
Peak RSS per point comes from VmHWM after resetting it through /proc/self/clear_refs.
"""

import argparse
import json
import math
import os
import platform
import re
import resource
import sys
import time


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--attention", choices=["soft", "soft-norm", "softmax", "ufo"], default="soft")
    p.add_argument("--tokens", type=int, default=3136, help="N = H*W; must be a perfect square (square token grid)")
    p.add_argument("--dim", type=int, default=64, help="embedding dim D")
    p.add_argument("--heads", type=int, default=2, help="heads h; dh = D/h")
    p.add_argument("--ratio", type=int, default=8, help="SOFT landmark conv kernel = stride r (m = floor(H/r)^2)")
    p.add_argument("--landmarks", type=int, default=None,
                   help="SOFT: keep m fixed (a perfect square, e.g. 49) by choosing the stride per grid, as the 2021 code did; overrides --ratio")
    p.add_argument("--conv", type=int, default=9, help="SOFT depthwise residual conv kernel k (0 disables it)")
    p.add_argument("--dwconv-layout", choices=["official", "depthwise"], default="official",
                   help="SOFT conv residual: official = batch B*dh, h channels, groups=h (as the 2021 code); "
                        "depthwise = the same maths as one [B, h*dh, H, W] depthwise conv with each head's filter repeated dh times")
    p.add_argument("--newton-iters", type=int, default=20)
    p.add_argument("--distance", choices=["direct", "expanded"], default="direct",
                   help="direct: sum_c (a-b)^2 like the official CUDA kernel; expanded: |a|^2+|b|^2-2ab like the 'torch' kernel")
    p.add_argument("--iters", type=int, default=20, help="timed calls per rep")
    p.add_argument("--reps", type=int, default=5, help="blocks of --iters timed calls")
    p.add_argument("--warmup", type=int, default=3, help="untimed calls before each point")
    p.add_argument("--threads", type=int, default=None, help="torch/OpenMP/OpenBLAS threads (default: CPUs available)")
    p.add_argument("--omp-wait-policy", choices=["default", "active", "passive"], default="default",
                   help="OMP_WAIT_POLICY for torch's OpenMP pool; passive keeps multi-threaded runs usable when other processes share the cores")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--sweep", action="store_true", help="run every token count in --sweep-tokens")
    p.add_argument("--sweep-tokens", default="1024,3136,4096,9216,16384,36864,65536",
                   help="comma-separated token counts, each a perfect square")
    p.add_argument("--max-scores-gib", type=float, default=4.0,
                   help="sweep: skip softmax points whose N x N x heads float32 score tensor exceeds this (peak RSS is ~2x more: scaled scores and softmax output coexist)")
    p.add_argument("--json", default=None, help="write results here")
    p.add_argument("--check", action="store_true", help="verify the maths (Newton inverse, conv residual) and exit")
    p.add_argument("--quiet-config", action="store_true", help="do not print torch.__config__.show()")
    return p.parse_args(argv)


ARGS = parse_args(sys.argv[1:])
THREADS = ARGS.threads or len(os.sched_getaffinity(0))
# OpenBLAS sizes its own pthread pool from the environment at load time, independent of
# torch.set_num_threads, so it has to be pinned before torch (and with it libopenblas) loads.
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = str(THREADS)
# libgomp reads this once at load. Its default spins at every barrier before sleeping, which
# is fastest on idle cores and 5-10x slower when another process holds one of them.
if ARGS.omp_wait_policy != "default":
    os.environ["OMP_WAIT_POLICY"] = ARGS.omp_wait_policy.upper()

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402


# ----------------------------------------------------------------------------------------------
# Environment report
# ----------------------------------------------------------------------------------------------

def blas_report():
    """Which BLAS/LAPACK is actually mapped into this process.

    Debian's torch reports BLAS_INFO=generic: it links libblas.so.3, which the alternatives
    system points at OpenBLAS *or* the reference BLAS (about 10x slower for GEMM). Only the
    mapped file tells which one a run used.
    """
    libs = set()
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                path = line.split()[-1] if len(line.split()) >= 6 else ""
                if re.search(r"blas|lapack|mkl|blis|atlas", os.path.basename(path), re.I):
                    libs.add(path)
    except OSError as e:
        return {"libraries": [], "kind": "unknown (%s)" % e}
    joined = " ".join(sorted(libs)).lower()
    if "openblas" in joined:
        kind = "OpenBLAS"
    elif "mkl" in joined:
        kind = "MKL"
    elif "blis" in joined:
        kind = "BLIS"
    elif "atlas" in joined:
        kind = "ATLAS"
    elif libs:
        kind = "reference BLAS (netlib; slow)"
    else:
        kind = "none mapped (torch's built-in kernels only)"
    return {"libraries": sorted(libs), "kind": kind}


def busy_cpus(interval=0.5):
    """CPUs kept busy by other processes right now (this one sleeps meanwhile), from /proc/stat.

    The load average would also count this script's own previous runs in a shell loop.
    """
    def snap():
        with open("/proc/stat") as f:
            vals = [int(v) for v in f.readline().split()[1:]]
        return sum(vals), vals[3] + (vals[4] if len(vals) > 4 else 0)   # total, idle + iowait
    try:
        t0, i0 = snap()
        time.sleep(interval)
        t1, i1 = snap()
    except (OSError, ValueError, IndexError):
        return None
    ncpu = os.cpu_count() or 1
    return round(ncpu * (1 - (i1 - i0) / max(t1 - t0, 1)), 2)


def environment():
    cfg = torch.__config__.show()
    blas_info = re.search(r"BLAS_INFO=([^,\s]+)", cfg)
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_blas_info": blas_info.group(1) if blas_info else None,
        "blas": blas_report(),
        "threads": torch.get_num_threads(),
        "interop_threads": torch.get_num_interop_threads(),
        "cpu": platform.processor() or platform.machine(),
        "cpus_available": len(os.sched_getaffinity(0)),
        "mkldnn": torch.backends.mkldnn.is_available(),
        "loadavg_1min": os.getloadavg()[0],
        "busy_cpus_before": busy_cpus(),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "default"),
    }


# ----------------------------------------------------------------------------------------------
# SOFT (docs/MATHS.md section 1)
# ----------------------------------------------------------------------------------------------

def sq_dist(a, b, mode):
    """dist[i, j] = sum_c (a[i, c] - b[j, c])^2 over the last axis; [..., n, d] x [..., m, d] -> [..., n, m]."""
    if mode == "expanded":
        # The official "torch" kernel: can dip slightly below 0 through cancellation.
        return (a * a).sum(-1, keepdim=True) + (b * b).sum(-1).unsqueeze(-2) - 2.0 * (a @ b.transpose(-1, -2))
    # cdist without the mm trick subtracts directly (never negative, like the CUDA kernel) and
    # does not materialise the [n, m, d] difference tensor; squaring its sqrt costs ~1 ulp.
    return torch.cdist(a, b, p=2.0, compute_mode="donot_use_mm_for_euclid_dist").pow(2)


def newton_inverse_a(a, iters):
    """Variant A (section 1.4): per-matrix alpha = 1.8 / (max row sum)^2, P = A + 0.01 I, V <- 2V - V P V."""
    m = a.shape[-1]
    s = a.sum(-1).amax(-1)                                     # max row sum of the unshifted A, per matrix
    alpha = (1.8 / (s * s))[..., None, None]
    p = a + 0.01 * torch.eye(m, dtype=a.dtype, device=a.device)
    v = alpha * p
    for _ in range(iters):
        v = 2 * v - (v @ p) @ v                               # left-associative, as V @ P @ V in the code
    return v


def newton_inverse_b(a, iters):
    """Variant B (section 1.4): one alpha = 2 / (max row sum over the whole tensor)^2, halved while ||I - A V||_1 > 1.01."""
    m = a.shape[-1]
    eye = torch.eye(m, dtype=a.dtype, device=a.device)
    alpha = 2.0 / a.sum(-1).max() ** 2
    v = alpha * a
    pnorm = (eye - a @ v).abs().sum(-2).max()                  # max column abs-sum, over batch and heads too
    cnt = 0
    while pnorm > 1.01 and cnt < 10:
        alpha = alpha * 0.5
        v = alpha * a
        pnorm = (eye - a @ v).abs().sum(-2).max()
        cnt += 1
    for _ in range(iters):
        v = 2 * v - (v @ a) @ v
    return v


def split_heads(t, h):
    b, n, d = t.shape
    return t.reshape(b, n, h, d // h).transpose(1, 2)


def combine_heads(t):
    b, h, n, dh = t.shape
    return t.transpose(1, 2).reshape(b, n, h * dh)


def stride_for_landmarks(grid, landmarks):
    """Stride r for a fixed landmark count: the largest r with floor(grid/r) >= sqrt(m).

    With kernel = stride = r no r gives exactly sqrt(m) per side on every grid (32/4 = 8,
    32/5 = 6 for m = 49), so m can come out larger; the actual m is reported per point.
    """
    side = math.isqrt(landmarks)
    if side * side != landmarks:
        raise SystemExit("--landmarks must be a perfect square (got %d)" % landmarks)
    if grid < side:
        raise SystemExit("grid %d is smaller than sqrt(landmarks) = %d" % (grid, side))
    return grid // side



def depthwise_residual(v, conv, hgt, wid, layout):
    """SOFT's depthwise conv on V: head g's k×k filter over each of its dh channels. 'official' is
    the official [B·dh, h, H, W] groups=h layout; 'depthwise' the same weights as an ordinary
    depthwise conv over h·dh channels (oneDNN runs the official layout ~30x slower)."""
    b, h, n, dh = v.shape
    if layout == "depthwise":
        vc = v.reshape(b, h, hgt, wid, dh).permute(0, 1, 4, 2, 3).reshape(b, h * dh, hgt, wid)
        w = conv.weight.repeat_interleave(dh, 0)
        y = F.conv2d(vc, w, padding=conv.padding, groups=h * dh)
        return y.reshape(b, h, dh, n).transpose(-1, -2)
    vc = v.reshape(b, h, hgt, wid, dh).permute(0, 4, 1, 2, 3).reshape(b * dh, h, hgt, wid)
    return conv(vc).reshape(b, dh, h, hgt, wid).flatten(3).permute(0, 2, 3, 1)

class SoftAttention(nn.Module):
    """SoftmaxFreeAttention + SoftmaxFreeAttentionKernel (ratio > 1), or the SOFT-Norm kernel."""

    def __init__(self, dim, heads, ratio, conv, newton_iters, distance, norm=False, dwconv_layout="official"):
        super().__init__()
        self.h, self.dh, self.r, self.k = heads, dim // heads, ratio, conv
        self.dwconv_layout = dwconv_layout
        self.newton_iters, self.distance, self.norm = newton_iters, distance, norm
        self.q = nn.Linear(dim, dim)
        self.v = nn.Linear(dim, dim)
        self.ff = nn.Linear(dim, dim)
        # One weight shared by all heads (quirk Q8).
        self.landmark_conv = nn.Conv2d(self.dh, self.dh, kernel_size=ratio, stride=ratio, bias=False)
        self.landmark_norm = nn.LayerNorm(self.dh, eps=1e-5)
        self.landmark_act = nn.GELU()                          # exact erf GELU
        self.dconv = nn.Conv2d(heads, heads, (conv, conv), padding=(conv // 2, conv // 2), groups=heads, bias=False) if conv else None

    def kernel(self, q, v, hgt, wid, keep=None):
        b, h, n, dh = q.shape
        qs = q / math.sqrt(math.sqrt(dh))                      # K = Qs (no key projection)
        t = qs.reshape(b * h, hgt, wid, dh).permute(0, 3, 1, 2)
        c = self.landmark_conv(t).flatten(2).transpose(1, 2)   # [B*h, m, dh], remainder rows/cols dropped
        m = c.shape[1]
        lm = self.landmark_act(self.landmark_norm(c)).reshape(b, h, m, dh)
        k1 = torch.exp(-sq_dist(qs, lm, self.distance) / 2)    # [B, h, N, m]
        k2 = torch.exp(-sq_dist(lm, lm, self.distance) / 2)    # [B, h, m, m]
        if self.norm:
            d = k2.sum(-1).rsqrt()
            k2inv = d[..., :, None] * newton_inverse_b(k2, self.newton_iters) * d[..., None, :]
        else:
            k2inv = newton_inverse_a(k2, self.newton_iters)
        x = (k1 @ k2inv) @ (k1.transpose(-1, -2) @ v)          # this association keeps every product O(N m dh)
        if self.dconv is not None:
            x = x + self.conv_residual(v, hgt, wid)
        if keep is not None:
            keep.update(k2=k2, k2inv=k2inv, m=m, v=v)
        return x

    def conv_residual(self, v, hgt, wid):
        return depthwise_residual(v, self.dconv, hgt, wid, self.dwconv_layout)

    def forward(self, x, hgt, wid, keep=None):
        q = split_heads(self.q(x), self.h)
        v = split_heads(self.v(x), self.h)
        return self.ff(combine_heads(self.kernel(q, v, hgt, wid, keep)))


# ----------------------------------------------------------------------------------------------
# Softmax (stage-4 PVT Block attention, sr_ratio 1) and UFO (docs/MATHS.md section 5.3)
# ----------------------------------------------------------------------------------------------

class SoftmaxAttention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.h, self.scale = heads, (dim // heads) ** -0.5
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x, hgt=None, wid=None, keep=None):
        b, n, d = x.shape
        q = split_heads(self.q(x), self.h)
        kv = self.kv(x).reshape(b, n, 2, self.h, d // self.h).permute(2, 0, 3, 1, 4)
        k, v = kv[0], kv[1]
        attn = ((q @ k.transpose(-1, -2)) * self.scale).softmax(-1)
        return self.proj(combine_heads(attn @ v))


class UfoAttention(nn.Module):
    """The seed UFOAttention with d_k = d_v = D/h (per-head sizing assumed; section 5.4)."""

    def __init__(self, dim, heads):
        super().__init__()
        self.h = heads
        self.fc_q = nn.Linear(dim, dim)
        self.fc_k = nn.Linear(dim, dim)
        self.fc_v = nn.Linear(dim, dim)
        self.fc_o = nn.Linear(dim, dim)
        self.gamma = nn.Parameter(torch.randn(1, heads, 1, 1))  # one tensor for both XNorms, as in the seed

    def xnorm(self, t):
        return t * self.gamma / t.norm(p=2, dim=-1, keepdim=True)   # no epsilon, as in the seed

    def forward(self, x, hgt=None, wid=None, keep=None):
        q = split_heads(self.fc_q(x), self.h)
        k = split_heads(self.fc_k(x), self.h).transpose(-1, -2)     # [B, h, dk, N]
        v = split_heads(self.fc_v(x), self.h)
        kv = k @ v                                                  # K^T V first: O(N dk dv)
        return self.fc_o(combine_heads(self.xnorm(q) @ self.xnorm(kv)))


# ----------------------------------------------------------------------------------------------
# Timing
# ----------------------------------------------------------------------------------------------

def percentile(sorted_xs, p):
    """Linear interpolation between closest ranks (numpy default, Hyndman-Fan type 7)."""
    h = (len(sorted_xs) - 1) * p
    lo = math.floor(h)
    hi = min(lo + 1, len(sorted_xs) - 1)
    return sorted_xs[lo] + (h - lo) * (sorted_xs[hi] - sorted_xs[lo])


def summarize(xs):
    s = sorted(xs)
    med = percentile(s, 0.5)
    p10, p90 = percentile(s, 0.1), percentile(s, 0.9)
    return {"n": len(s), "median": med, "p10": p10, "p90": p90, "min": s[0], "max": s[-1],
            "mean": sum(s) / len(s), "relSpread": (p90 - p10) / med if med > 0 else 0.0}


def read_status_kib(field):
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def reset_peak_rss():
    """Resets VmHWM so each sweep point gets its own peak (Linux >= 4.0); False if unsupported."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def grid_of(tokens):
    side = math.isqrt(tokens)
    if side * side != tokens:
        raise SystemExit("--tokens must be a perfect square (square token grid); got %d" % tokens)
    return side


def build(attention, dim, heads, grid):
    if dim % heads:
        raise SystemExit("--dim must be divisible by --heads")
    if attention in ("soft", "soft-norm"):
        ratio = stride_for_landmarks(grid, ARGS.landmarks) if ARGS.landmarks else ARGS.ratio
        if grid // ratio < 1:
            raise SystemExit("grid %d is smaller than the landmark stride %d" % (grid, ratio))
        mod = SoftAttention(dim, heads, ratio, ARGS.conv, ARGS.newton_iters, ARGS.distance, norm=attention == "soft-norm",
                            dwconv_layout=ARGS.dwconv_layout)
        return mod, {"stride": ratio, "landmarks": (grid // ratio) ** 2, "conv": ARGS.conv, "newton_iters": ARGS.newton_iters,
                     "dwconv_layout": ARGS.dwconv_layout,
                     "newton_variant": "B+D^-1/2" if attention == "soft-norm" else "A", "distance": ARGS.distance}
    if attention == "softmax":
        return SoftmaxAttention(dim, heads), {}
    return UfoAttention(dim, heads), {}


def bench_point(attention, tokens):
    grid = grid_of(tokens)
    torch.manual_seed(ARGS.seed)
    mod, extra = build(attention, ARGS.dim, ARGS.heads, grid)
    mod.eval()
    point = {"attention": attention, "tokens": tokens, "grid": [grid, grid], "dim": ARGS.dim, "heads": ARGS.heads,
             "batch": ARGS.batch, **extra}
    if attention == "softmax":
        scores = ARGS.batch * ARGS.heads * tokens * tokens * 4
        point["scores_bytes"] = scores
        if ARGS.sweep and scores > ARGS.max_scores_gib * 2 ** 30:
            point["skipped"] = "N x N scores need %.1f GiB > --max-scores-gib %.1f" % (scores / 2 ** 30, ARGS.max_scores_gib)
            return point
    x = torch.randn(ARGS.batch, tokens, ARGS.dim)
    rss_before = read_status_kib("VmRSS")
    hwm_reset = reset_peak_rss()
    samples = []
    rep_medians = []
    with torch.no_grad():
        for _ in range(ARGS.warmup):
            mod(x, grid, grid)
        for _ in range(ARGS.reps):
            block = []
            for _ in range(ARGS.iters):
                t0 = time.perf_counter()
                mod(x, grid, grid)
                block.append((time.perf_counter() - t0) * 1e3)
            samples += block
            rep_medians.append(summarize(block)["median"])
    hwm = read_status_kib("VmHWM") if hwm_reset else None
    point["ms"] = summarize(samples)
    point["rep_medians_ms"] = rep_medians
    point["rss_before_mib"] = rss_before / 1024 if rss_before is not None else None
    # Without clear_refs support VmHWM/ru_maxrss are process-wide peaks, so say which one this is.
    if hwm is not None:
        point["peak_rss_mib"], point["peak_rss_scope"] = hwm / 1024, "this point (VmHWM after clear_refs)"
    else:
        point["peak_rss_mib"], point["peak_rss_scope"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "whole process so far (ru_maxrss)"
    return point


def print_point(p):
    head = "%-9s N=%6d (%dx%d)" % (p["attention"], p["tokens"], p["grid"][0], p["grid"][1])
    if "landmarks" in p:
        head += " m=%4d r=%2d" % (p["landmarks"], p["stride"])
    if "skipped" in p:
        print("%s  skipped: %s" % (head, p["skipped"]), flush=True)
        return
    s = p["ms"]
    print("%s  median %9.3f ms  p10 %9.3f  p90 %9.3f  (n=%d, spread %.1f%%)  peak RSS %7.1f MiB"
          % (head, s["median"], s["p10"], s["p90"], s["n"], 100 * s["relSpread"], p["peak_rss_mib"]), flush=True)


# ----------------------------------------------------------------------------------------------
# Self-check
# ----------------------------------------------------------------------------------------------

class CheckReport:
    """Prints each check (error vs tolerance) and remembers whether all passed."""

    def __init__(self, width=64):
        self.ok = True
        self.width = width

    def __call__(self, name, err, tol):
        good = err <= tol
        self.ok &= good
        print("%-*s %.3e  (tol %.0e)  %s" % (self.width, name, err, tol, "ok" if good else "FAIL"))


def check():
    report = CheckReport()

    # docs/MATHS.md section 6.4: landmarks (0,0), (1,0), (0,1), (1,1) -> a well-conditioned 4x4 kernel.
    pts = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], dtype=torch.float64)
    a = torch.exp(-torch.cdist(pts, pts).pow(2) / 2)
    eye = torch.eye(4, dtype=torch.float64)
    va = newton_inverse_a(a, 20)
    report("A: Newton(20) vs linalg.inv(A + 0.01 I), float64", (va - torch.linalg.inv(a + 0.01 * eye)).abs().max().item(), 1e-10)
    report("A: V[0,:] vs docs/MATHS.md 6.4 (2.391984, -1.420333, ..., 0.834644)",
           (va[0] - torch.tensor([2.391984, -1.420333, -1.420333, 0.834644], dtype=torch.float64)).abs().max().item(), 1e-6)
    va32 = newton_inverse_a(a.float(), 20).double()
    report("A: Newton(20) float32 vs linalg.inv(A + 0.01 I)", (va32 - torch.linalg.inv(a + 0.01 * eye)).abs().max().item(), 1e-4)
    # Residual squares each step (section 6.2); the spec lists ||I - P V_k||_F for k = 1, 2, 3.
    s = a.sum(-1).max()
    p = a + 0.01 * eye
    v = (1.8 / s ** 2) * p
    e1 = []
    for _ in range(3):
        v = 2 * v - v @ p @ v
        e1.append(torch.linalg.norm(eye - p @ v).item())
    report("A: e1 after 1,2,3 iterations vs 1.630, 1.383, 1.108", max(abs(x - y) for x, y in zip(e1, [1.630, 1.383, 1.108])), 1e-3)
    vb = newton_inverse_b(a, 20)
    report("B: Newton(20) vs linalg.inv(A), float64", (vb - torch.linalg.inv(a)).abs().max().item(), 1e-8)

    # A SOFT forward whose grid gives 4 landmarks (16x16 tokens, r = 8 -> 2x2): the Newton
    # inverse it used vs the direct inverse of the K2 it built.
    torch.manual_seed(ARGS.seed)
    mod = SoftAttention(64, 2, 8, 9, 20, "direct").double().eval()
    x = torch.randn(1, 256, 64, dtype=torch.float64)
    keep = {}
    with torch.no_grad():
        out = mod(x, 16, 16, keep)
    k2, k2inv = keep["k2"], keep["k2inv"]
    cond = torch.linalg.cond(k2 + 0.01 * torch.eye(4, dtype=torch.float64)).max().item()
    err = (k2inv - torch.linalg.inv(k2 + 0.01 * torch.eye(4, dtype=torch.float64))).abs().max().item()
    print("SOFT forward: m=%d landmarks, K2 [%s], cond(K2 + 0.01 I) up to %.1f" % (keep["m"], "x".join(map(str, k2.shape)), cond))
    if cond < 50:
        report("SOFT forward: Newton(20) inverse vs linalg.inv(K2 + 0.01 I)", err, 1e-4)
    else:
        # Slow modes need more than 20 iterations there (section 6.2, point 4): not an error.
        print("SOFT forward: K2 ill-conditioned, Newton(20) differs by %.2e (expected; not asserted)" % err)
    report("SOFT forward: output finite", 0.0 if torch.isfinite(out).all() else 1.0, 0.0)

    # The depthwise residual's reshapes against a per-head, per-channel conv2d.
    v = keep["v"]
    b, h, n, dh = v.shape
    with torch.no_grad():
        y = mod.conv_residual(v, 16, 16)
        mod.dwconv_layout = "depthwise"
        y_dw = mod.conv_residual(v, 16, 16)
    ref = torch.empty_like(y)
    for g in range(h):
        for c in range(dh):
            img = v[0, g, :, c].reshape(1, 1, 16, 16)
            ref[0, g, :, c] = F.conv2d(img, mod.dconv.weight[g:g + 1], padding=4).reshape(-1)
    report("SOFT conv residual (official layout) vs per-head/per-channel conv2d", (y - ref).abs().max().item(), 1e-12)
    report("SOFT conv residual (depthwise layout) vs per-head/per-channel conv2d", (y_dw - ref).abs().max().item(), 1e-12)

    # Product order must not change the value (only the cost).
    k1 = torch.rand(1, 2, 256, 4, dtype=torch.float64)
    vv = torch.rand(1, 2, 256, 32, dtype=torch.float64)
    report("(K1 @ inv) @ (K1^T @ V) == K1 @ inv @ K1^T @ V", ((k1 @ k2inv) @ (k1.transpose(-1, -2) @ vv) - k1 @ k2inv @ k1.transpose(-1, -2) @ vv).abs().max().item(), 1e-9)

    # Distances: direct and expanded agree; direct is never negative.
    qa, la = torch.randn(1, 1, 300, 32), torch.randn(1, 1, 49, 32)
    dd, de = sq_dist(qa, la, "direct"), sq_dist(qa, la, "expanded")
    report("squared distance: direct vs expanded, float32 (relative)", ((dd - de).abs() / dd.clamp_min(1)).max().item(), 1e-5)
    print("check:", "PASSED" if report.ok else "FAILED")
    return report.ok


# ----------------------------------------------------------------------------------------------

def main():
    torch.set_num_threads(THREADS)
    env = environment()
    if not ARGS.quiet_config:
        print(torch.__config__.show().rstrip())
    print("torch %s, %d threads; BLAS mapped: %s (%s)" % (env["torch"], env["threads"], env["blas"]["kind"], ", ".join(env["blas"]["libraries"]) or "-"))
    if ARGS.check:
        sys.exit(0 if check() else 1)
    busy = env["busy_cpus_before"]
    if busy is not None and busy > 0.3 and busy + THREADS > env["cpus_available"] + 0.3:
        # OpenMP/OpenBLAS workers spin at barriers; with the cores shared they wait on each
        # other's time slices and multi-threaded runs get 5-50x slower and very noisy.
        print("warning: other processes keep %.2f CPUs busy; with %d threads on %d CPUs timings will be inflated and noisy%s"
              % (busy, THREADS, env["cpus_available"],
                 "" if env["omp_wait_policy"] == "PASSIVE" else " (--omp-wait-policy passive helps)"), file=sys.stderr)
    tokens = [int(t) for t in ARGS.sweep_tokens.split(",")] if ARGS.sweep else [ARGS.tokens]
    results = []
    for n in tokens:
        p = bench_point(ARGS.attention, n)
        print_point(p)
        results.append(p)
    if ARGS.json:
        cfg = {k: v for k, v in vars(ARGS).items() if k not in ("json",)}
        cfg["threads"] = THREADS
        with open(ARGS.json, "w") as f:
            json.dump({"tool": "scripts/perf/pytorch-baseline.py", "environment": env, "config": cfg, "results": results}, f, indent=1)
        print("wrote", ARGS.json)


if __name__ == "__main__":
    main()
