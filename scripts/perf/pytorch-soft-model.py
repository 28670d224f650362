#!/usr/bin/python3
"""PyTorch eager CPU baseline for the whole SOFT model (SoftmaxFreeVisionTransformer).

Written from docs/MATHS.md sections 1-2 (the official fudan-zvg/SOFT master code:
models/softmax_free_transformer.py + models/softmax_free_vision_transformer.py), with the
official module names, so `model.load_state_dict(torch.load(...))` takes an official
state_dict as it is. It follows the official maths op for op: BatchNorm+ReLU stems, bilinear
(align_corners=False) positional-embedding resize, post-norm SOFT blocks with the
`kernel_method='torch'` distance (|q|^2 @ ones + ones @ |k|^2 - 2 q k^T) and the Newton
inverse variant A (soft_*) or B with the D^-1/2 scaling (soft_norm_*), the official
[B*dh, h, H, W] depthwise-conv residual, a pre-norm softmax stage 4 with the cls token,
final LayerNorm, head. Only the CUDA-only parts are replaced by the same maths on CPU
(docs/MATHS.md quirk Q14).

Thread pinning, BLAS report, the summary (type-7 percentiles, = server/jobs/bench/stats.ts) and
the Newton inverses come from scripts/perf/pytorch-baseline.py, imported (not copied): its
module-level code pins OMP/OpenBLAS threads before torch loads.

Run with Debian's interpreter (python3-torch 1.13; libblas.so.3 must point at OpenBLAS):

  /usr/bin/python3 scripts/perf/pytorch-soft-model.py --check
  /usr/bin/python3 scripts/perf/pytorch-soft-model.py --model soft_tiny --resolution 224 --batches 1,8 --threads 2 --json out.json

--check loads fixtures/ref/tiny_soft.pth (official state_dict of a tiny SOFT model), runs
fixtures/ref/tiny_input_64x64.bin and the preprocessed PNG, and compares the logits with the
official ones in fixtures/ref/tiny_soft_logits.json (tolerance 1e-5 absolute), plus every
intermediate activation, plus the parameter counts of all ten registered models against
fixtures/ref/params.json.

Timing: random official-style init (seed), eval(), torch.no_grad(); per batch size
`--warmup` untimed forwards, then timed forwards until the stopping rule of the TS harness
(server/jobs/bench/stats.ts checkStability: window 5, tolerance 2 %) holds after `--min-reps`
runs and `--min-seconds`, or `--budget-seconds` / `--max-reps` is spent. OpenBLAS picks its own
kernels for the CPU unless `--openblas-coretype` says otherwise (the environment's
OPENBLAS_CORETYPE is dropped by default); the kernel set used is printed. `--profile` adds the
top aten ops (torch.profiler) per batch size.
"""

import argparse
import functools
import importlib.util
import json
import math
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
REF = os.path.join(ROOT, "fixtures", "ref")

# docs/MATHS.md 2.6: the ten registered models (embed_dims, num_heads, depths); every one has
# patch_size 4, mlp_ratios [8,8,4,4] (only [3] used), sr_ratios [8,4,2,1], qkv_bias, conv 9/5/3.
SIZES = {
    "tiny": ([64, 128, 320, 512], [2, 4, 10, 16], [1, 2, 3, 2]),
    "small": ([64, 128, 320, 512], [2, 4, 10, 16], [1, 3, 20, 4]),
    "medium": ([64, 128, 288, 512], [2, 4, 9, 16], [1, 3, 29, 5]),
    "large": ([64, 128, 320, 512], [2, 4, 10, 16], [1, 3, 40, 5]),
    "huge": ([64, 128, 352, 512], [2, 4, 11, 16], [1, 5, 49, 5]),
}
MODELS = ["soft_" + s for s in SIZES] + ["soft_norm_" + s for s in SIZES]


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", choices=MODELS, default="soft_tiny")
    p.add_argument("--resolution", type=int, default=224)
    p.add_argument("--batches", default="1,8", help="comma-separated batch sizes")
    p.add_argument("--kernel-method", choices=["torch", "cuda"], default="torch",
                   help="distance: torch = the official |q|^2@ones + ones@|k|^2 - 2qk (the YAML default); "
                        "cuda = direct sum (q-k)^2 like the CUDA kernel (computed here with cdist)")
    p.add_argument("--dwconv-layout", choices=["official", "depthwise"], default="official",
                   help="conv residual: official = Conv2d(h, h, groups=h) over a [B*dh, h, H, W] batch (as the official code); "
                        "depthwise = the same maths as one [B, h*dh, H, W] depthwise conv (not the official op; for comparison)")
    p.add_argument("--newton-iters", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3, help="untimed forwards per batch size")
    p.add_argument("--min-reps", type=int, default=10)
    p.add_argument("--min-seconds", type=float, default=2.0)
    p.add_argument("--budget-seconds", type=float, default=20.0, help="stop timing a batch size after this long even if not stable")
    p.add_argument("--max-reps", type=int, default=1000)
    p.add_argument("--threads", type=int, default=None, help="torch/OpenMP/OpenBLAS threads (default: CPUs available)")
    p.add_argument("--omp-wait-policy", choices=["default", "active", "passive"], default="default")
    p.add_argument("--openblas-coretype", default="auto",
                   help="auto: drop OPENBLAS_CORETYPE from the environment so OpenBLAS picks its kernels for this CPU "
                        "(on this AVX-512 EPYC: Cooperlake; a forced Haswell = AVX2 was ~15%% slower); env: keep the environment's; "
                        "or a core name (Haswell, SkylakeX, ...)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default=None, help="write results here")
    p.add_argument("--profile", action="store_true", help="after timing each batch size, print the top ops by self CPU time (torch.profiler)")
    p.add_argument("--check", action="store_true", help="compare with the official logits in fixtures/ref and exit")
    p.add_argument("--quiet-config", action="store_true", help="do not print torch.__config__.show()")
    return p.parse_args(argv)


ARGS = parse_args(sys.argv[1:])
THREADS = ARGS.threads or len(os.sched_getaffinity(0))


ENV_OPENBLAS_CORETYPE = os.environ.get("OPENBLAS_CORETYPE")
if ARGS.openblas_coretype == "auto":
    os.environ.pop("OPENBLAS_CORETYPE", None)
elif ARGS.openblas_coretype != "env":
    os.environ["OPENBLAS_CORETYPE"] = ARGS.openblas_coretype


def load_baseline():
    """Imports scripts/perf/pytorch-baseline.py, which parses its own argv and pins the threads at import."""
    path = os.path.join(HERE, "pytorch-baseline.py")
    spec = importlib.util.spec_from_file_location("pytorch_baseline", path)
    mod = importlib.util.module_from_spec(spec)
    saved, saved_bytecode = sys.argv, sys.dont_write_bytecode
    sys.argv = [path, "--threads", str(THREADS), "--omp-wait-policy", ARGS.omp_wait_policy, "--quiet-config"]
    sys.dont_write_bytecode = True  # no scripts/perf/__pycache__ in the working tree
    try:
        spec.loader.exec_module(mod)
    finally:
        sys.argv, sys.dont_write_bytecode = saved, saved_bytecode
    return mod


BASE = load_baseline()  # sets OMP/OPENBLAS/MKL_NUM_THREADS (and OMP_WAIT_POLICY), then imports torch

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402


# ----------------------------------------------------------------------------------------------
# SOFT attention (docs/MATHS.md section 1), official module names
# ----------------------------------------------------------------------------------------------

def gaussian_distance_torch(q, k_t):
    """subtraction_gaussian_kernel_torch: q [.., N, C], k_t [.., C, M] (pre-transposed) -> [.., N, M]."""
    a = q ** 2. @ torch.ones(k_t.shape[-2:], dtype=q.dtype)
    b = torch.ones(q.shape[-2:], dtype=q.dtype) @ k_t ** 2.
    return a + b - 2. * (q @ k_t)


class SoftmaxFreeAttentionKernel(nn.Module):
    """Kernel forward, ratio > 1 path (section 1.3); norm=True is SoftmaxFreeNormAttentionKernel (1.5)."""

    def __init__(self, dim, num_heads, max_iter, kernel_method, ratio, conv_size, norm=False, dwconv_layout="official"):
        super().__init__()
        self.head_dim = dim // num_heads
        self.num_head = num_heads
        self.max_iter = max_iter
        self.kernel_method = kernel_method
        self.ratio = ratio
        self.norm = norm
        self.dwconv_layout = dwconv_layout
        # One landmark conv shared by all heads (quirk Q8); LayerNorm eps 1e-5, exact GELU.
        self.Qlandmark_op = nn.Conv2d(self.head_dim, self.head_dim, kernel_size=ratio, stride=ratio, bias=False)
        self.Qnorm_act = nn.Sequential(nn.LayerNorm(self.head_dim), nn.GELU())
        self.conv = nn.Conv2d(num_heads, num_heads, kernel_size=(conv_size, conv_size),
                              padding=(conv_size // 2, conv_size // 2), bias=False, groups=num_heads)

    def kernel_function(self, a, b_t):
        if self.kernel_method == "torch":
            return gaussian_distance_torch(a, b_t)
        return BASE.sq_dist(a, b_t.transpose(-1, -2), "direct")

    def newton_inv(self, mat):
        if self.norm:
            return BASE.newton_inverse_b(mat, self.max_iter)
        return BASE.newton_inverse_a(mat, self.max_iter)

    def forward(self, Q, V, H, W):
        b, nhead, N, headdim = Q.size()
        Q = Q / math.sqrt(math.sqrt(self.head_dim))
        Q_landmarks = Q.reshape(b * nhead, H * W, headdim).reshape(b * nhead, H, W, headdim).permute(0, 3, 1, 2)
        Q_landmarks = self.Qlandmark_op(Q_landmarks)
        Q_landmarks = Q_landmarks.flatten(2).transpose(1, 2).reshape(b, nhead, -1, headdim)
        Q_landmarks = self.Qnorm_act(Q_landmarks)
        K_landmarks = Q_landmarks

        kernel_1_ = torch.exp(-self.kernel_function(Q, K_landmarks.transpose(-1, -2).contiguous()) / 2)
        kernel_2_ = torch.exp(-self.kernel_function(Q_landmarks, K_landmarks.transpose(-1, -2).contiguous()) / 2)
        kernel_3_ = kernel_1_.transpose(-1, -2)
        inv = self.newton_inv(kernel_2_)
        if self.norm:
            d = 1.0 / torch.sqrt(kernel_2_.sum(-1))
            inv = d[..., :, None] * inv * d[..., None, :]
        X = torch.matmul(torch.matmul(kernel_1_, inv), torch.matmul(kernel_3_, V))
        return X + self.conv_residual(V, H, W)

    def conv_residual(self, V, H, W):
        return BASE.depthwise_residual(V, self.conv, H, W, self.dwconv_layout)


class SoftmaxFreeAttention(nn.Module):
    """Section 1.2: W_q, W_v (no key projection), the kernel, ff."""

    def __init__(self, dim, num_heads, max_iter, kernel_method, ratio, conv_size, norm, dwconv_layout):
        super().__init__()
        self.num_head = num_heads
        self.head_dim = dim // num_heads
        self.W_q = nn.Linear(dim, dim)
        self.W_v = nn.Linear(dim, dim)
        self.attn = SoftmaxFreeAttentionKernel(dim, num_heads, max_iter, kernel_method, ratio, conv_size, norm, dwconv_layout)
        self.ff = nn.Linear(dim, dim)

    def split_heads(self, X):
        return X.reshape(X.size(0), X.size(1), self.num_head, self.head_dim).transpose(1, 2)

    def combine_heads(self, X):
        X = X.transpose(1, 2)
        return X.reshape(X.size(0), X.size(1), self.num_head * self.head_dim)

    def forward(self, X, H, W):
        Q = self.split_heads(self.W_q(X))
        V = self.split_heads(self.W_v(X))
        return self.ff(self.combine_heads(self.attn(Q, V, H, W)))


class Approx_GeLU(nn.Module):
    """The SOFT FFN's tanh GELU (quirk Q7), as the official formula."""

    def forward(self, x):
        return 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * torch.pow(x, 3))))


class SoftmaxFreeTransformer(nn.Module):
    """Section 2.3, post-norm; hidden = 4*dim whatever mlp_ratio says (quirk Q5); dropouts are identity at eval."""

    def __init__(self, dim, num_heads, max_iter, kernel_method, ratio, conv_size, norm, dwconv_layout):
        super().__init__()
        self.mha = SoftmaxFreeAttention(dim, num_heads, max_iter, kernel_method, ratio, conv_size, norm, dwconv_layout)
        self.norm1 = nn.LayerNorm(dim)                  # eps 1e-5 (Q6)
        self.ff1 = nn.Linear(dim, 4 * dim)
        self.act = Approx_GeLU()
        self.ff2 = nn.Linear(4 * dim, dim)
        self.norm2 = nn.LayerNorm(dim)

    def forward(self, X, H, W):
        X = self.norm1(self.mha(X, H, W) + X)
        return self.norm2(self.ff2(self.act(self.ff1(X))) + X)


class SoftmaxFreeTransformerBlock(nn.Module):
    def __init__(self, *args):
        super().__init__()
        self.att = SoftmaxFreeTransformer(*args)

    def forward(self, x, H, W):
        return self.att(x, H, W)


# ----------------------------------------------------------------------------------------------
# Stage 4 (PVT Block, pre-norm softmax attention, sr_ratio 1) and the stems (section 2.1, 2.4)
# ----------------------------------------------------------------------------------------------

class Attention(nn.Module):
    def __init__(self, dim, num_heads, qkv_bias, qk_scale):
        super().__init__()
        self.num_heads = num_heads
        self.scale = qk_scale or (dim // num_heads) ** -0.5
        self.q = nn.Linear(dim, dim, bias=qkv_bias)
        self.kv = nn.Linear(dim, dim * 2, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x, H, W):
        B, N, C = x.shape
        q = self.q(x).reshape(B, N, self.num_heads, C // self.num_heads).permute(0, 2, 1, 3)
        kv = self.kv(x).reshape(B, -1, 2, self.num_heads, C // self.num_heads).permute(2, 0, 3, 1, 4)
        k, v = kv[0], kv[1]
        attn = ((q @ k.transpose(-2, -1)) * self.scale).softmax(dim=-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(B, N, C))


class Mlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()                            # exact erf GELU
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, dim, num_heads, mlp_ratio, qkv_bias, qk_scale, norm_layer):
        super().__init__()
        self.norm1 = norm_layer(dim)
        self.attn = Attention(dim, num_heads, qkv_bias, qk_scale)
        self.norm2 = norm_layer(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x, H, W):
        x = x + self.attn(self.norm1(x), H, W)
        return x + self.mlp(self.norm2(x))


class PatchEmbed(nn.Module):
    """Stage 1 (kernel_size=7 branch): three 3x3 convs (s2, s1, s2) each + BN + ReLU; stages 2-4: one 3x3/s2 conv + BN + ReLU."""

    def __init__(self, in_chans, embed_dim, first):
        super().__init__()
        if first:
            self.proj = nn.Sequential(
                nn.Conv2d(in_chans, 32, 3, 2, 1), nn.BatchNorm2d(32), nn.ReLU(),
                nn.Conv2d(32, 32, 3, 1, 1), nn.BatchNorm2d(32), nn.ReLU(),
                nn.Conv2d(32, embed_dim, 3, 2, 1), nn.BatchNorm2d(embed_dim), nn.ReLU())
        else:
            self.proj = nn.Sequential(nn.Conv2d(in_chans, embed_dim, 3, 2, 1), nn.BatchNorm2d(embed_dim), nn.ReLU())

    def forward(self, x):
        x = self.proj(x)
        H, W = x.shape[-2:]
        return x.flatten(2).transpose(1, 2), (H, W)


# ----------------------------------------------------------------------------------------------
# The model (section 2)
# ----------------------------------------------------------------------------------------------

class SoftmaxFreeVisionTransformer(nn.Module):
    def __init__(self, img_size=224, patch_size=4, in_chans=3, num_classes=1000, embed_dims=(64, 128, 256, 512),
                 num_heads=(1, 2, 4, 8), mlp_ratios=(4, 4, 4, 4), qkv_bias=False, qk_scale=None, drop_rate=0.,
                 attn_drop_rate=0., drop_path_rate=0., norm_layer=nn.LayerNorm, depths=(3, 4, 6, 3), sr_ratios=(8, 4, 2, 1),
                 newton_max_iter=20, kernel_method="torch", conv_sizes=(9, 5, 3), norm_kernel=False, dwconv_layout="official",
                 init_weights=True):
        super().__init__()
        self.num_classes = num_classes
        self.depths = depths
        grid = img_size // patch_size
        # Own parameters first (state_dict order of section 2.7).
        self.pos_embed1 = nn.Parameter(torch.zeros(1, grid * grid, embed_dims[0]))
        self.pos_embed2 = nn.Parameter(torch.zeros(1, (grid // 2) ** 2, embed_dims[1]))
        self.pos_embed3 = nn.Parameter(torch.zeros(1, (grid // 4) ** 2, embed_dims[2]))
        self.pos_embed4 = nn.Parameter(torch.zeros(1, (grid // 8) ** 2 + 1, embed_dims[3]))
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dims[3]))
        self.patch_embed1 = PatchEmbed(in_chans, embed_dims[0], True)
        self.patch_embed2 = PatchEmbed(embed_dims[0], embed_dims[1], False)
        self.patch_embed3 = PatchEmbed(embed_dims[1], embed_dims[2], False)
        self.patch_embed4 = PatchEmbed(embed_dims[2], embed_dims[3], False)
        for s in range(3):
            setattr(self, "block%d" % (s + 1), nn.ModuleList([
                SoftmaxFreeTransformerBlock(embed_dims[s], num_heads[s], newton_max_iter, kernel_method, sr_ratios[s],
                                            conv_sizes[s], norm_kernel, dwconv_layout)
                for _ in range(depths[s])]))
        self.block4 = nn.ModuleList([Block(embed_dims[3], num_heads[3], mlp_ratios[3], qkv_bias, qk_scale, norm_layer)
                                     for _ in range(depths[3])])
        self.norm = norm_layer(embed_dims[3])
        self.head = nn.Linear(embed_dims[3], num_classes) if num_classes > 0 else nn.Identity()
        # Official init (section 2.9); convs and BN keep PyTorch defaults. init_weights=False only
        # for counting parameters (trunc_normal_ over 87M values takes seconds).
        if not init_weights:
            return
        for p in (self.pos_embed1, self.pos_embed2, self.pos_embed3, self.pos_embed4, self.cls_token):
            nn.init.trunc_normal_(p, std=.02)
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(m):
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=.02)
            if m.bias is not None:
                nn.init.constant_(m.bias, 0)
        elif isinstance(m, nn.LayerNorm):
            nn.init.constant_(m.bias, 0)
            nn.init.constant_(m.weight, 1.0)

    @staticmethod
    def _get_pos_embed(pos_embed, H, W):
        """Stored g x g grid -> H x W, bilinear, align_corners=False (identity at 224)."""
        g = int(math.sqrt(pos_embed.shape[1]))
        grid = pos_embed.reshape(1, g, g, -1).permute(0, 3, 1, 2)
        return F.interpolate(grid, size=(H, W), mode="bilinear", align_corners=False).reshape(1, -1, H * W).permute(0, 2, 1)

    def forward_features(self, x, taps=None):
        def tap(name, t):
            if taps is not None:
                taps[name] = t
        B = x.shape[0]
        for s in (1, 2, 3):
            x, (H, W) = getattr(self, "patch_embed%d" % s)(x)
            tap("patch_embed%d_out" % s, x)
            x = x + self._get_pos_embed(getattr(self, "pos_embed%d" % s), H, W)
            tap("block%d.0_in" % s, x)
            for i, blk in enumerate(getattr(self, "block%d" % s)):
                x = blk(x, H, W)
                tap("block%d.%d_out" % (s, i), x)
            x = x.reshape(B, H, W, -1).permute(0, 3, 1, 2).contiguous()
        x, (H, W) = self.patch_embed4(x)
        tap("patch_embed4_out", x)
        x = torch.cat((self.cls_token.expand(B, -1, -1), x), dim=1)
        pos_embed4 = torch.cat((self.pos_embed4[:, 0:1], self._get_pos_embed(self.pos_embed4[:, 1:], H, W)), dim=1)
        x = x + pos_embed4
        tap("block4.0_in", x)
        for i, blk in enumerate(self.block4):
            x = blk(x, H, W)
            tap("block4.%d_out" % i, x)
        x = self.norm(x)
        tap("norm_out", x)
        return x[:, 0]

    def forward(self, x, taps=None):
        logits = self.head(self.forward_features(x, taps))
        if taps is not None:
            taps["logits"] = logits
        return logits


def build_registered(name, **overrides):
    size = name.rsplit("_", 1)[1]
    embed_dims, num_heads, depths = SIZES[size]
    kw = dict(patch_size=4, embed_dims=embed_dims, num_heads=num_heads, mlp_ratios=[8, 8, 4, 4], qkv_bias=True,
              norm_layer=functools.partial(nn.LayerNorm, eps=1e-6), depths=depths, sr_ratios=[8, 4, 2, 1],
              newton_max_iter=ARGS.newton_iters, kernel_method=ARGS.kernel_method, norm_kernel=name.startswith("soft_norm_"),
              dwconv_layout=ARGS.dwconv_layout)
    kw.update(overrides)
    return SoftmaxFreeVisionTransformer(**kw)


# ----------------------------------------------------------------------------------------------
# --check: the official logits
# ----------------------------------------------------------------------------------------------

def read_f32(path, shape):
    with open(path, "rb") as f:
        data = bytearray(f.read())
    return torch.frombuffer(data, dtype=torch.float32).reshape(shape).clone()


def check():
    report = BASE.CheckReport(width=70)

    with open(os.path.join(REF, "tiny_soft_config.json")) as f:
        cfg = json.load(f)
    with open(os.path.join(REF, "tiny_soft_logits.json")) as f:
        ref = json.load(f)
    kw = {k: v for k, v in cfg["constructor_kwargs"].items() if k != "kernel_method"}
    model = SoftmaxFreeVisionTransformer(**kw, kernel_method="torch", norm_layer=functools.partial(nn.LayerNorm, eps=1e-6),
                                         dwconv_layout="official")
    state = torch.load(os.path.join(REF, "tiny_soft.pth"), map_location="cpu")
    result = model.load_state_dict(state)  # strict: every official key present, none extra
    print("load_state_dict(torch.load('fixtures/ref/tiny_soft.pth')): %s (%d tensors)" % (result, len(state)))
    expected_keys = [e["key"] for e in cfg["state_dict"]]
    report("state_dict keys in the official order (mismatches)", float(sum(a != b for a, b in zip(model.state_dict(), expected_keys))
                                                                       + abs(len(expected_keys) - len(model.state_dict()))), 0)
    nparams = sum(p.numel() for p in model.parameters())
    report("tiny model parameters vs %d (difference)" % cfg["param_count"], float(abs(nparams - cfg["param_count"])), 0)
    model.eval()
    logits_diffs = {}
    for key, fname in (("64x64", "tiny_input_64x64.bin"), ("png_64x64", "tiny_image_64x64_preprocessed.bin")):
        x = read_f32(os.path.join(REF, fname), ref["inputs"][key]["shape"])
        taps = {}
        with torch.no_grad():
            out = model(x, taps)
        want = torch.tensor(ref["tiny_soft"][key]["logits_float32"], dtype=torch.float32)
        diff = (out - want).abs().max().item()
        logits_diffs[key] = diff
        report("logits vs official, input %s (max abs diff)" % fname, diff, 1e-5)
        print("  argmax %d (official %d)" % (int(out.argmax()), ref["tiny_soft"][key]["argmax"]))
        index = ref["tiny_soft"][key].get("intermediates_index")
        if index:
            inter = read_f32(os.path.join(REF, ref["tiny_soft"][key]["intermediates_file"]),
                             [sum(v["numel"] for v in index.values())])
            worst = (0.0, "")
            for name, meta in index.items():
                want_t = inter[meta["offset_floats"]:meta["offset_floats"] + meta["numel"]].reshape(meta["shape"])
                d = (taps[name] - want_t).abs().max().item() / max(1.0, want_t.abs().max().item())
                worst = max(worst, (d, name))
            report("  every intermediate (%d) vs official, worst: %s (max abs / max(1, |ref|))" % (len(index), worst[1]), worst[0], 1e-5)

    # The other paths, same weights (no official logits exist for them here; informative only).
    x = read_f32(os.path.join(REF, "tiny_input_64x64.bin"), ref["inputs"]["64x64"]["shape"])
    want = torch.tensor(ref["tiny_soft"]["64x64"]["logits_float32"], dtype=torch.float32)
    for label, extra in (("kernel_method='cuda' (direct distance)", dict(kernel_method="cuda")),
                         ("depthwise conv-residual layout", dict(kernel_method="torch", dwconv_layout="depthwise")),
                         ("Norm kernel (Newton B + D^-1/2)", dict(kernel_method="torch", norm_kernel=True))):
        other = SoftmaxFreeVisionTransformer(**kw, norm_layer=functools.partial(nn.LayerNorm, eps=1e-6), **extra)
        other.load_state_dict(state)
        with torch.no_grad():
            out = other.eval()(x)
        print("  %-40s logits differ from the official base model by %.3e%s"
              % (label, (out - want).abs().max().item(), "" if torch.isfinite(out).all() else " (NON-FINITE)"))
        report.ok &= bool(torch.isfinite(out).all())

    # Parameter counts of the ten registered models (built, not computed) vs the official ones.
    with open(os.path.join(REF, "params.json")) as f:
        official = json.load(f)["models"]
    worst = 0
    for name in MODELS:
        m = build_registered(name, init_weights=False)
        n = sum(p.numel() for p in m.parameters())
        worst = max(worst, abs(n - official[name]["total_params"]))
        print("  %-17s %12d parameters (official %d)" % (name, n, official[name]["total_params"]))
        del m
    report("registered models: parameter count vs fixtures/ref/params.json (worst difference)", float(worst), 0)
    print("check:", "PASSED" if report.ok else "FAILED")
    return report.ok, logits_diffs


# ----------------------------------------------------------------------------------------------
# Timing
# ----------------------------------------------------------------------------------------------

def check_stability(samples, window=5, tolerance=0.02):
    """server/jobs/bench/stats.ts checkStability: last-window median within tolerance of the overall one, and relSpread settled."""
    if len(samples) < max(2 * window, window + 1):
        return False, "only %d samples" % len(samples)
    s_all = BASE.summarize(samples)
    last = BASE.summarize(samples[-window:])
    before = BASE.summarize(samples[:-window])
    drift = abs(last["median"] - s_all["median"]) / s_all["median"] if s_all["median"] > 0 else math.inf
    spread_drift = abs(s_all["relSpread"] - before["relSpread"])
    if not drift <= tolerance:
        return False, "last-%d median drifts %.2f %%" % (window, 100 * drift)
    if not spread_drift <= tolerance:
        return False, "relative spread still moving by %.4f" % spread_drift
    return True, "median within %.2f %%, spread moved %.4f over the last %d" % (100 * drift, spread_drift, window)


def host_load_meter():
    """Other processes' CPU use (cores) from now until the returned function is called: /proc/stat minus this process."""
    hz = os.sysconf("SC_CLK_TCK")

    def busy_s():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return (sum(v) - v[3] - (v[4] if len(v) > 4 else 0)) / hz
    try:
        b0, own0, t0 = busy_s(), sum(os.times()[:2]), time.perf_counter()
    except (OSError, ValueError):
        return lambda: None

    def other():
        wall = time.perf_counter() - t0
        return round(max(0.0, (busy_s() - b0 - (sum(os.times()[:2]) - own0)) / wall), 2) if wall > 0.5 else None
    return other


def time_batch(model, batch):
    gen = torch.Generator().manual_seed(ARGS.seed + 1)
    x = torch.randn(batch, 3, ARGS.resolution, ARGS.resolution, generator=gen)
    busy_before = BASE.busy_cpus(0.3)
    samples = []
    with torch.no_grad():
        t_warm = time.perf_counter()
        for _ in range(ARGS.warmup):
            out = model(x)
        warmup_s = time.perf_counter() - t_warm
        if not torch.isfinite(out).all():
            raise SystemExit("non-finite logits at batch %d" % batch)
        load = host_load_meter()
        started = time.perf_counter()
        stable, reason = False, "not checked"
        while len(samples) < ARGS.max_reps:
            t0 = time.perf_counter()
            model(x)
            samples.append((time.perf_counter() - t0) * 1e3)
            spent = time.perf_counter() - started
            if len(samples) >= ARGS.min_reps and spent >= ARGS.min_seconds:
                stable, reason = check_stability(samples)
                if stable or spent > ARGS.budget_seconds:
                    break
    other = load()
    summary = BASE.summarize(samples)
    return {"other_cores_during": other, "model": ARGS.model, "resolution": ARGS.resolution, "batch": batch, "ms": summary,
            "images_per_s": 1e3 * batch / summary["median"], "stable": stable, "stop_reason": reason,
            "warmup_runs": ARGS.warmup, "warmup_s": warmup_s, "busy_cpus_before": busy_before}


def profile_batch(model, batch, top=10):
    """Self CPU time per aten op over a few extra forwards (torch.profiler; adds its own overhead)."""
    x = torch.randn(batch, 3, ARGS.resolution, ARGS.resolution, generator=torch.Generator().manual_seed(ARGS.seed + 1))
    runs = 5 if batch == 1 else 2
    with torch.no_grad(), torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        for _ in range(runs):
            model(x)
    ops = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in ops) / runs / 1e3
    rows = [{"op": e.key, "ms_per_run": e.self_cpu_time_total / runs / 1e3, "calls_per_run": e.count // runs} for e in ops[:top]]
    print("  torch.profiler, batch %d: self CPU time per run by op (mean of %d runs; all ops %.2f ms/run)" % (batch, runs, total))
    for r in rows:
        print("    %-28s %9.2f ms  %5.1f %%  %5d calls" % (r["op"], r["ms_per_run"], 100 * r["ms_per_run"] / total, r["calls_per_run"]))
    return {"runs": runs, "total_ms_per_run": total, "top": rows}


def openblas_core(libraries):
    """The kernel set OpenBLAS chose (openblas_get_corename of the mapped libopenblas), or None."""
    import ctypes
    for path in libraries:
        if "libopenblas" in os.path.basename(path):
            try:
                fn = ctypes.CDLL(path).openblas_get_corename
                fn.restype = ctypes.c_char_p
                return fn().decode()
            except (OSError, AttributeError):
                return None
    return None


def main():
    torch.set_num_threads(THREADS)
    env = BASE.environment()
    env["OPENBLAS_CORETYPE"] = os.environ.get("OPENBLAS_CORETYPE")
    env["OPENBLAS_CORETYPE_in_caller_env"] = ENV_OPENBLAS_CORETYPE
    env["openblas_core"] = openblas_core(env["blas"]["libraries"])
    if not ARGS.quiet_config:
        print(torch.__config__.show().rstrip())
    print("torch %s, %d threads; BLAS mapped: %s (%s); OpenBLAS kernels: %s (OPENBLAS_CORETYPE %s)" % (
        env["torch"], env["threads"], env["blas"]["kind"], ", ".join(env["blas"]["libraries"]) or "-", env["openblas_core"],
        env["OPENBLAS_CORETYPE"] or "unset"), flush=True)
    if ARGS.check:
        ok, _ = check()
        sys.exit(0 if ok else 1)
    if "reference" in env["blas"]["kind"]:
        print("warning: the reference (netlib) BLAS is mapped; Linear layers run ~10x slower than with OpenBLAS. "
              "Point libblas.so.3 at OpenBLAS (update-alternatives) before quoting these figures.", file=sys.stderr)
    torch.manual_seed(ARGS.seed)
    model = build_registered(ARGS.model).eval()
    nparams = sum(p.numel() for p in model.parameters())
    print("%s (%s distance, Newton %s, %d iterations, conv residual %s layout), %d parameters, %dx%d, random init seed %d"
          % (ARGS.model, ARGS.kernel_method, "B + D^-1/2" if ARGS.model.startswith("soft_norm_") else "A", ARGS.newton_iters,
             ARGS.dwconv_layout, nparams, ARGS.resolution, ARGS.resolution, ARGS.seed), flush=True)
    results = []
    for batch in [int(b) for b in ARGS.batches.split(",")]:
        r = time_batch(model, batch)
        s = r["ms"]
        print("  batch %2d  median %9.2f ms  p10 %9.2f  p90 %9.2f  min %9.2f  (n=%d, spread %.1f%%, %s)  %8.2f images/s;"
              " other processes %s cores while timed"
              % (batch, s["median"], s["p10"], s["p90"], s["min"], s["n"], 100 * s["relSpread"],
                 "stable" if r["stable"] else "budget spent", r["images_per_s"], r["other_cores_during"]), flush=True)
        if ARGS.profile:
            r["profile"] = profile_batch(model, batch)
        results.append(r)
    if ARGS.json:
        cfg = {k: v for k, v in vars(ARGS).items() if k != "json"}
        cfg["threads"] = THREADS
        with open(ARGS.json, "w") as f:
            json.dump({"tool": "scripts/perf/pytorch-soft-model.py", "environment": env, "config": cfg, "parameters": nparams,
                       "results": results}, f, indent=1)
        print("wrote", ARGS.json)


if __name__ == "__main__":
    main()
