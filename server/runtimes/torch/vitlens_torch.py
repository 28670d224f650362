#!/usr/bin/env python3
"""ViT Lens's PyTorch runtime: runs ViT Lens op-set programs with the user's own torch.

The one Python file the extension ships. It installs nothing and imports nothing but the standard
library and torch. ViT Lens starts it with the user's interpreter and talks to it over stdin and
stdout:

  python vitlens_torch.py --probe    prints one JSON line: Python, torch and the devices torch sees
  python vitlens_torch.py            serves requests until stdin closes

Messages in both directions are framed the same way: a 4-byte little-endian length, that many
bytes of UTF-8 JSON (the header), then the raw bytes of each blob whose length the header lists
under "blobs". Blobs are little-endian arrays of the program's dtype (float32 unless the program
says "float64"). The program is plain data written by server/core/engine/lowerings/torch.ts (JSON
nodes over tensor ids, weights as blobs): no pickle and no code crosses the boundary.

Requests ({"cmd": ..., "id": ...}; every answer has "ok" and the same "id"):

  prepare  program (+ its buffers as blobs), device, compile   -> handle
  run      handle, inputs [{name}] (+ blobs)                    -> outputs [{shape}] (+ blobs)
  bind     handle, inputs (+ blobs): kept for time and memory
  time     handle                                               -> ms (one run on the bound inputs)
  memory   handle                                               -> figures
  grad     handle, inputs (+ blobs), output (a tensor id of one value), wrt [[tensor ids]]
           -> grads [{shape}] (+ blobs): torch.autograd.grad of that output with respect to each
           group of leaves (inputs, weights, constants of the program), summed over a group's ids
           (one parameter read at several places), zeros where the output does not depend on it
  release  handle

Each op means exactly what ViT Lens's float64 reference interpreter computes
(server/core/engine/lowerings/reference.ts); every result is reshaped to the shape the program
declares, so shape conventions (kept reduction axes, flattened views) are the program's, not
torch's.
"""

import json
import os
import platform
import struct
import sys
import time

PROGRAM_VERSION = 1

# Responses go to the real stdout; anything a library prints goes to stderr instead, so a stray
# print can never corrupt a frame.
_OUT = sys.stdout.buffer
sys.stdout = sys.stderr


def _read_exact(stream, n):
    chunks = []
    while n > 0:
        chunk = stream.read(n)
        if not chunk:
            return None
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def read_message(stream):
    head = _read_exact(stream, 4)
    if head is None:
        return None, []
    (length,) = struct.unpack("<I", head)
    header = json.loads(_read_exact(stream, length).decode("utf-8"))
    blobs = [_read_exact(stream, n) for n in header.get("blobs", [])]
    return header, blobs


def write_message(header, blobs=()):
    blobs = [bytes(b) for b in blobs]
    header = dict(header, blobs=[len(b) for b in blobs])
    body = json.dumps(header).encode("utf-8")
    _OUT.write(struct.pack("<I", len(body)) + body)
    for b in blobs:
        _OUT.write(b)
    _OUT.flush()


def probe():
    """What this interpreter has: versions, and every device torch can run on."""
    info = {
        "python": {"executable": sys.executable, "version": platform.python_version()},
        "platform": sys.platform,
        "machine": platform.machine(),
    }
    try:
        import torch
    except Exception as e:  # ImportError, or a broken install raising anything at import
        info["torch"] = None
        info["reason"] = "torch cannot be imported: %s: %s" % (type(e).__name__, e)
        return info
    devices = [{"kind": "cpu", "index": 0, "name": platform.processor() or platform.machine(), "threads": torch.get_num_threads()}]
    cuda = {"available": False}
    try:
        if torch.cuda.is_available():
            cuda["available"] = True
            for i in range(torch.cuda.device_count()):
                p = torch.cuda.get_device_properties(i)
                devices.append(
                    {
                        "kind": "cuda",
                        "index": i,
                        "name": p.name,
                        "capability": "%d.%d" % (p.major, p.minor),
                        "memoryBytes": int(p.total_memory),
                        "multiprocessors": int(p.multi_processor_count),
                    }
                )
        elif torch.version.cuda or getattr(torch.version, "hip", None):
            cuda["reason"] = "torch was built with %s but sees no device" % (
                "ROCm/HIP %s" % torch.version.hip if getattr(torch.version, "hip", None) else "CUDA %s" % torch.version.cuda
            )
        else:
            cuda["reason"] = "this torch build has no CUDA or ROCm support (a CPU-only build)"
    except Exception as e:
        cuda["reason"] = "CUDA query failed: %s: %s" % (type(e).__name__, e)
    mps = {"available": False}
    try:
        backend = getattr(torch.backends, "mps", None)
        if backend is not None and backend.is_available():
            mps["available"] = True
            devices.append({"kind": "mps", "index": 0, "name": "Apple GPU (Metal Performance Shaders)"})
        elif backend is not None and backend.is_built():
            mps["reason"] = "built with MPS but no Metal device is available"
        else:
            mps["reason"] = "this torch build has no MPS support"
    except Exception as e:
        mps["reason"] = "MPS query failed: %s: %s" % (type(e).__name__, e)
    info["torch"] = {
        "version": torch.__version__,
        "cuda": torch.version.cuda,
        "hip": getattr(torch.version, "hip", None),
        "compile": _compile_support(torch, cuda["available"]),
    }
    info["libraryDirs"] = _cuda_library_dirs(torch)
    info["cudaStatus"] = cuda
    info["mpsStatus"] = mps
    info["devices"] = devices
    return info


def _compile_support(torch, cuda_available):
    """Whether torch.compile can run here: it came in torch 2.0; dynamo supports a range of Pythons;
    inductor compiles CPU kernels with a C++ compiler and GPU kernels with triton."""
    out = {"available": False, "cpu": {"available": False}, "cuda": {"available": False}}
    if not hasattr(torch, "compile"):
        out["reason"] = "torch %s has no torch.compile (it came in torch 2.0)" % torch.__version__
        return out
    try:
        import torch._dynamo as dynamo

        supported = getattr(dynamo, "is_dynamo_supported", lambda: True)()
    except Exception as e:
        out["reason"] = "torch._dynamo cannot be imported: %s: %s" % (type(e).__name__, e)
        return out
    if not supported:
        out["reason"] = "torch %s's torch.compile does not support Python %s" % (torch.__version__, platform.python_version())
        return out
    out["available"] = True
    import shutil

    cxx = os.environ.get("CXX") or next((c for c in ("g++", "c++", "clang++") if shutil.which(c)), None)
    out["cpu"] = (
        {"available": True}
        if cxx
        else {"available": False, "reason": "inductor compiles CPU kernels with a C++ compiler and none was found (g++, c++, clang++, CXX)"}
    )
    if not cuda_available:
        out["cuda"] = {"available": False, "reason": "torch sees no CUDA device"}
    else:
        try:
            import triton  # noqa: F401

            out["cuda"] = {"available": True}
        except Exception as e:
            out["cuda"] = {"available": False, "reason": "inductor's GPU kernels need triton, which cannot be imported: %s" % e}
    return out


def _cuda_library_dirs(torch):
    """Folders of CUDA libraries this torch brought: pip wheels keep the CUDA runtime, cuBLAS and
    cuDNN in site-packages/nvidia/*/lib, where other programs (onnxruntime's CUDA EP) can use them."""
    dirs = []
    torch_lib = os.path.join(os.path.dirname(torch.__file__), "lib")
    if os.path.isdir(torch_lib):
        dirs.append(torch_lib)
    try:
        import importlib.util

        spec = importlib.util.find_spec("nvidia")
        roots = list(spec.submodule_search_locations or []) if spec else []
    except Exception:
        roots = []
    for root in roots:
        try:
            names = sorted(os.listdir(root))
        except OSError:
            continue
        for name in names:
            lib = os.path.join(root, name, "lib")
            if os.path.isdir(lib):
                dirs.append(lib)
    return dirs


class Program:
    """A lowered graph on one device: weights and constants resident, intermediates freed after their last use."""

    def __init__(self, torch, header, blobs):
        program = header["program"]
        if program.get("format") != "vitlens-torch-program" or program.get("version") != PROGRAM_VERSION:
            raise ValueError("not a ViT Lens torch program of version %d" % PROGRAM_VERSION)
        self.torch = torch
        self.F = torch.nn.functional
        self.device = torch.device(header["device"])
        dtype = program.get("dtype", "float32")
        if dtype not in ("float32", "float64"):
            raise ValueError("unknown program dtype %r" % dtype)
        self.dtype = torch.float64 if dtype == "float64" else torch.float32
        self.nodes = program["nodes"]
        self.inputs = program["inputs"]
        self.outputs = program["outputs"]
        self.resident = {}
        for spec, blob in zip(program["buffers"], blobs):
            t = torch.frombuffer(bytearray(blob), dtype=self.dtype).reshape(spec["shape"])
            self.resident[spec["id"]] = t.to(self.device)
        # After node i runs, the tensors whose last reader it is are dropped (outputs are kept).
        last_use = {}
        for i, n in enumerate(self.nodes):
            for ref in _operands(n):
                last_use[ref] = i
        keep = set(self.outputs) | set(self.resident)
        self.frees = [[] for _ in self.nodes]
        for ref, i in last_use.items():
            if ref not in keep:
                self.frees[i].append(ref)
        self.bound = None
        self.forward = self._forward
        if header.get("compile"):
            self.forward = torch.compile(self._forward)

    def tensors_from(self, header, blobs):
        by_name = {spec["name"]: blob for spec, blob in zip(header["inputs"], blobs)}
        env = {}
        for spec in self.inputs:
            blob = by_name.get(spec["name"])
            if blob is None:
                raise ValueError('input "%s" is missing' % spec["name"])
            t = self.torch.frombuffer(bytearray(blob), dtype=self.dtype)
            if t.numel() != _numel(spec["shape"]):
                raise ValueError('input "%s": expected %d values, got %d' % (spec["name"], _numel(spec["shape"]), t.numel()))
            env[spec["id"]] = t.reshape(spec["shape"]).to(self.device)
        return env

    def _forward(self, inputs):
        env = dict(self.resident)
        env.update(inputs)
        for i, n in enumerate(self.nodes):
            if n["id"] not in env:
                env[n["id"]] = self.evaluate(n, env)
            for ref in self.frees[i]:
                env.pop(ref, None)
        return [env[i] for i in self.outputs]

    def gradients(self, inputs, output, wrt):
        """torch.autograd.grad of tensor `output` (one value) with respect to each group of leaf
        ids in `wrt`, summed within a group: torch's own derivatives of its own ops (the program
        evaluated eagerly with autograd on), independent of ViT Lens's backward graphs."""
        torch = self.torch
        if output not in self.outputs:
            raise ValueError("grad: tensor %r is not an output of the program" % (output,))
        ids = []
        for group in wrt:
            if not group:
                raise ValueError("grad: an empty group of tensors to differentiate with respect to")
            for i in group:
                if i not in ids:
                    ids.append(i)
        leaves = set(self.resident) | set(inputs)
        for i in ids:
            if i not in leaves:
                raise ValueError("grad: tensor %r is not an input, weight or constant of the program" % (i,))
        # Tensors made under inference mode cannot take part in autograd: fresh copies, outside it.
        with torch.inference_mode(False), torch.enable_grad():
            env = {i: t.clone() for i, t in self.resident.items()}
            env.update({i: t.clone() for i, t in inputs.items()})
            wanted = [env[i].requires_grad_(True) for i in ids]
            y = self._forward_from(env, output)
            if y.numel() != 1:
                raise ValueError("grad: output %r has %d values, not one" % (output, y.numel()))
            found = torch.autograd.grad(y.reshape(()), wanted, allow_unused=True) if wanted else []
            by_id = {i: (g if g is not None else torch.zeros_like(env[i])).detach() for i, g in zip(ids, found)}
        out = []
        for group in wrt:
            total = None
            for i in group:
                total = by_id[i] if total is None else total + by_id[i]
            out.append(total)
        return out

    def _forward_from(self, env, output):
        """Evaluates the nodes in order over `env` (leaves already there) and returns tensor `output`."""
        for n in self.nodes:
            if n["id"] not in env:
                env[n["id"]] = self.evaluate(n, env)
        return env[output]

    def evaluate(self, n, v):
        torch, F, op = self.torch, self.F, n["op"]
        if op == "binary":
            a, b, fn = v[n["a"]], v[n["b"]], n["fn"]
            if fn == "add":
                r = a + b
            elif fn == "sub":
                r = a - b
            elif fn == "mul":
                r = a * b
            elif fn == "div":
                r = a / b
            elif fn == "greater":
                r = (a > b).to(a.dtype)
            else:
                raise ValueError("unknown binary fn %s" % fn)
        elif op == "unary":
            a, fn = v[n["a"]], n["fn"]
            r = {
                "exp": torch.exp,
                "erf": torch.erf,
                "tanh": torch.tanh,
                "sqrt": torch.sqrt,
                "neg": torch.neg,
                "square": torch.square,
                "reciprocal": torch.reciprocal,
                "abs": torch.abs,
                "relu": torch.relu,
                "log": torch.log,
            }[fn](a)
        elif op == "scale":
            r = v[n["a"]] * n["k"]
        elif op == "matmul":
            r = torch.matmul(v[n["a"]], v[n["b"]])
        elif op == "reduce":
            a, axis, fn = v[n["a"]], n["axis"], n["fn"]
            if fn == "sum":
                r = a.sum(axis, keepdim=True)
            elif fn == "sumSquares":
                r = (a * a).sum(axis, keepdim=True)
            elif fn == "max":
                r = a.amax(axis, keepdim=True)
            else:
                raise ValueError("unknown reduce fn %s" % fn)
        elif op == "transpose":
            r = v[n["a"]].permute(*n["perm"])
        elif op == "reshape":
            r = v[n["a"]]
        elif op == "softmax":
            r = torch.softmax(v[n["a"]], dim=-1)
        elif op == "layerNorm":
            a = v[n["a"]]
            r = F.layer_norm(a, (a.shape[-1],), v[n["weight"]].reshape(-1), v[n["bias"]].reshape(-1), n["eps"])
        elif op == "gelu":
            r = F.gelu(v[n["a"]], approximate="tanh" if n["approximation"] == "tanh" else "none")
        elif op == "conv2d":
            bias = v[n["bias"]].reshape(-1) if n["bias"] is not None else None
            r = F.conv2d(v[n["x"]], v[n["w"]], bias, stride=tuple(n["stride"]), padding=tuple(n["pad"]), groups=n["groups"])
        elif op == "slice":
            r = v[n["a"]].narrow(n["axis"], n["start"], n["end"] - n["start"])
        elif op == "concat":
            r = torch.cat([v[p] for p in n["parts"]], dim=n["axis"])
        elif op == "input":
            raise ValueError('input "%s" was not given' % n["name"])
        else:
            raise ValueError("unknown op %s" % op)
        shape = n["shape"]
        return r if list(r.shape) == shape else r.reshape(shape)


def _operands(n):
    op = n["op"]
    if op in ("input", "weight", "constant"):
        return []
    if op in ("binary", "matmul"):
        return [n["a"], n["b"]]
    if op == "layerNorm":
        return [n["a"], n["weight"], n["bias"]]
    if op == "conv2d":
        return [n["x"], n["w"]] + ([n["bias"]] if n["bias"] is not None else [])
    if op == "concat":
        return list(n["parts"])
    return [n["a"]]


def _numel(shape):
    out = 1
    for d in shape:
        out *= d
    return out


def _synchronize(torch, device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def _bytes(t, dtype):
    """The tensor's values as little-endian bytes of the program's dtype."""
    t = t.detach().to(dtype).cpu().contiguous()
    try:
        return t.numpy().tobytes()
    except Exception:  # a torch without numpy: slower, same bytes
        code = "d" if t.element_size() == 8 else "f"
        return struct.pack("<%d%s" % (t.numel(), code), *t.reshape(-1).tolist())


def _error_kind(e):
    text = str(e)
    if "out of memory" in text.lower() or type(e).__name__ == "OutOfMemoryError":
        return "out-of-memory"
    if "device-side assert" in text or "CUDA error" in text or ("MPS" in text and "error" in text.lower()):
        return "device"
    return "error"


def serve():
    import torch

    # The same number of CPU threads as the other runtimes measured beside it (ViT Lens sets it).
    threads = os.environ.get("VITLENS_TORCH_THREADS")
    if threads:
        torch.set_num_threads(int(threads))

    programs = {}
    next_handle = 1
    stdin = sys.stdin.buffer
    # Once set, a simulated fault (tests) fires on the given command.
    fault = os.environ.get("VITLENS_TORCH_FAULT", "")
    with torch.inference_mode():
        while True:
            header, blobs = read_message(stdin)
            if header is None:
                return
            rid, cmd = header.get("id"), header.get("cmd")
            try:
                if fault == "exit:" + str(cmd):
                    os._exit(3)
                if fault == "hang:" + str(cmd):
                    time.sleep(3600)
                if fault == "oom:" + str(cmd):
                    raise RuntimeError("CUDA out of memory. Tried to allocate 20.00 GiB (simulated by VITLENS_TORCH_FAULT)")
                if cmd == "prepare":
                    programs[next_handle] = Program(torch, header, blobs)
                    write_message({"id": rid, "ok": True, "handle": next_handle})
                    next_handle += 1
                elif cmd == "run":
                    p = programs[header["handle"]]
                    outs = p.forward(p.tensors_from(header, blobs))
                    _synchronize(torch, p.device)
                    write_message(
                        {"id": rid, "ok": True, "outputs": [{"shape": list(o.shape)} for o in outs]},
                        [_bytes(o, p.dtype) for o in outs],
                    )
                elif cmd == "grad":
                    p = programs[header["handle"]]
                    grads = p.gradients(p.tensors_from(header, blobs), header["output"], header["wrt"])
                    write_message(
                        {"id": rid, "ok": True, "grads": [{"shape": list(g.shape)} for g in grads]},
                        [_bytes(g, p.dtype) for g in grads],
                    )
                elif cmd == "bind":
                    p = programs[header["handle"]]
                    p.bound = p.tensors_from(header, blobs)
                    write_message({"id": rid, "ok": True})
                elif cmd == "time":
                    # One run on the bound inputs, timed on the device: CUDA events on CUDA,
                    # a synchronised wall clock elsewhere.
                    p = programs[header["handle"]]
                    if p.device.type == "cuda":
                        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                        start.record()
                        p.forward(p.bound)
                        end.record()
                        torch.cuda.synchronize(p.device)
                        ms = start.elapsed_time(end)
                    else:
                        _synchronize(torch, p.device)
                        t0 = time.perf_counter()
                        p.forward(p.bound)
                        _synchronize(torch, p.device)
                        ms = (time.perf_counter() - t0) * 1000.0
                    write_message({"id": rid, "ok": True, "ms": ms})
                elif cmd == "memory":
                    p = programs[header["handle"]]
                    figures = []
                    if p.device.type == "cuda":
                        torch.cuda.synchronize(p.device)
                        torch.cuda.reset_peak_memory_stats(p.device)
                        p.forward(p.bound)
                        torch.cuda.synchronize(p.device)
                        figures.append({"label": "PyTorch CUDA allocator peak (torch.cuda.max_memory_allocated)", "bytes": int(torch.cuda.max_memory_allocated(p.device))})
                    elif p.device.type == "mps":
                        p.forward(p.bound)
                        torch.mps.synchronize()
                        figures.append({"label": "PyTorch MPS allocated after a run (torch.mps.current_allocated_memory)", "bytes": int(torch.mps.current_allocated_memory())})
                    write_message({"id": rid, "ok": True, "figures": figures})
                elif cmd == "release":
                    programs.pop(header["handle"], None)
                    if torch.cuda.is_available():
                        torch.cuda.empty_cache()
                    write_message({"id": rid, "ok": True})
                else:
                    raise ValueError("unknown command %r" % cmd)
            except Exception as e:
                write_message({"id": rid, "ok": False, "kind": _error_kind(e), "error": "%s: %s" % (type(e).__name__, e)})


if __name__ == "__main__":
    if "--probe" in sys.argv[1:]:
        _OUT.write((json.dumps(probe()) + "\n").encode("utf-8"))
        _OUT.flush()
    else:
        serve()
