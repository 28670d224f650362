#!/usr/bin/env bash
# The GPU check: on a Linux x86-64 machine with an NVIDIA GPU and no network, what ViT Lens
# finds and measures there, in one command and under 8 minutes:
#   1. `vitlens devices`, as text and --json;
#   2. inference on every runtime the check runs: the tiny official checkpoint
#      (fixtures/ref/tiny_soft.pth) on its 64x64 input, whose logits the summary holds against the
#      official ones, and soft_tiny at 224 on two photos. No soft_tiny checkpoint is in the
#      repository (13M float32 parameters = 52 MB, over what the device machine takes beside
#      the bundle), so soft_tiny runs with seeded random weights (`vitlens infer` without a
#      checkpoint: seed 0): its timings are real, its top-5 means nothing;
#   3. the SOFT_Tiny benchmark (fixtures/configs/soft/SOFT_Tiny.yaml), one run per runtime so a
#      native crash or a timeout costs only that runtime's figures: ORT WebGPU on the NVIDIA
#      adapter, PyTorch on CUDA (torch-cuda), ORT's CUDA EP (ort-cuda) when devices calls it
#      usable, ORT CPU; the ids come from the packed CLI (its --backend list and devices --json,
#      scripts/gpu-check/plan.ts), not from this file. The full benchmark (1.5 s per case and the
#      1k-64k token scaling sweep) when the time left allows, else a smaller budget per case;
#   4. one merged JSON and HTML report, and summary.txt naming the runtime and device of every figure.
# Everything goes to the output folder: log.txt (every step's stderr), steps.tsv, environment.txt,
# devices.{txt,json}, plan.json, infer-*.json, bench-<runtime>.{json,html,txt}, bench.json,
# report.html, summary.txt. A failed or timed-out step is recorded and the check goes on; the exit
# status is 1 when any step failed, timed out or found no time left, 2 without a bundle, else 0.
#
# It needs the bundle that `npm run gpu-check:prepare` builds into .gpu-check/ (node, the packed
# extension, the Vulkan loader, check.cjs) and only bash, tar, timeout and xz or python3 here.
#
#   bash scripts/gpu-check/run.sh [OUT] [--quick] [--budget-s S] [--python PY] [--also ID,ID]
#                                 [--vulkan auto|system|bundled|none] [--bundle DIR]
#   OUT: the output folder; default $OUT when set, else gpu-check-out/.
#   --quick: the dry run on a machine without a GPU: 150 ms per case, no scaling sweep.
#   --budget-s: the whole check's time, from the start (default 450 s: under 8 minutes with margin).
#   --python: the Python whose torch runs torch-* (else VITLENS_PYTHON, else the CLI's own search).
#   --also: more runtime ids to benchmark after the others (e.g. torch-cuda-compiled).
#   --vulkan: auto (the system's loader, else the bundled one), system, bundled (also to test it where
#             the system has one), none (add no loader; a system one is still found).
set -uo pipefail   # no -e: a failed step is written down and the next one runs

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OUTDIR=""
QUICK=0
BUDGET_S=450
BUNDLE="$ROOT/.gpu-check"
PY="${VITLENS_PYTHON:-}"
ALSO=""
VULKAN=auto
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) QUICK=1 ;;
    --budget-s) BUDGET_S=$2; shift ;;
    --python) PY=$2; shift ;;
    --also) ALSO=$2; shift ;;
    --vulkan) VULKAN=$2; shift ;;
    --bundle) BUNDLE=$(cd "$2" && pwd); shift ;;
    -h|--help) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) echo "run.sh: unknown option $1" >&2; exit 2 ;;
    *) OUTDIR=$1 ;;
  esac
  shift
done
OUTDIR=${OUTDIR:-${OUT:-gpu-check-out}}
mkdir -p "$OUTDIR" && OUTDIR=$(cd "$OUTDIR" && pwd)
LOG="$OUTDIR/log.txt"
STEPS="$OUTDIR/steps.tsv"
ENVF="$OUTDIR/environment.txt"
# What an earlier check left here would be read as this one's (a benchmark that times out writes no JSON).
rm -f "$OUTDIR"/bench-*.json "$OUTDIR"/bench-*.html "$OUTDIR"/bench-*.txt "$OUTDIR"/infer-*.json \
  "$OUTDIR"/{bench.json,report.html,summary.txt,plan.json,devices.txt,devices.json,backends.txt,nvidia-smi.txt}
: >"$LOG"; : >"$STEPS"; : >"$ENVF"
START=$(date +%s)
DEADLINE=$((START + BUDGET_S))
FAILED=0

now() { date +%s; }
log() { printf '[%4ds] %s\n' "$(($(now) - START))" "$*" | tee -a "$LOG" >&2; }
envline() { echo "$*" >>"$ENVF"; log "$*"; }
# record NAME RC SECONDS NOTE: one line of steps.tsv (rc -1: not run)
record() {
  printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >>"$STEPS"
  [ "$2" = 0 ] || FAILED=1 # a step not run for lack of time counts: the check is incomplete
}
# step NAME LIMIT_S STDOUT_FILE NOTE CMD...: runs CMD under `timeout` (its whole process group is
# killed at the limit), its stdout to the file, its stderr into log.txt.
step() {
  local name=$1 limit=$2 out=$3 note=$4
  shift 4
  local left=$((DEADLINE - $(now)))
  if [ "$left" -lt 10 ]; then
    log "skip $name: out of time"
    record "$name" -1 0 "out of time"
    return 1
  fi
  [ "$limit" -gt "$left" ] && limit=$left
  log "step $name (limit ${limit}s): ${*##*/}"
  echo "=== $name: $*" >>"$LOG"
  local t0 rc
  t0=$(now)
  timeout -k 10 "$limit" "$@" >"$out" 2>>"$LOG"
  rc=$?
  record "$name" "$rc" "$(($(now) - t0))" "$note"
  [ "$rc" = 0 ] || log "$name: exit $rc$([ "$rc" = 124 ] && echo ' (timed out)')"
  return "$rc"
}

if [ ! -f "$BUNDLE/node.xz" ] || [ ! -f "$BUNDLE/extension.tar.xz" ] || [ ! -f "$BUNDLE/check.cjs" ]; then
  echo "run.sh: no bundle in $BUNDLE: run \`npm run gpu-check:prepare\` first (and carry .gpu-check)" | tee -a "$LOG" >&2
  exit 2
fi

# --- Unpack: node and the extension into /tmp (xz, else Python's lzma: a bare image may lack xz-utils).
WORK=$(mktemp -d "${TMPDIR:-/tmp}/vitlens-gpu-check.XXXXXX")
PYBIN=${PY:-python3}
unxz_to() {
  if command -v xz >/dev/null && [ -z "${VITLENS_GPU_CHECK_NO_XZ:-}" ]; then xz -dc "$1" >"$2"
  else "$PYBIN" -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' "$1" "$2"; fi
}
t0=$(now)
mkdir -p "$WORK/bin"
if unxz_to "$BUNDLE/node.xz" "$WORK/bin/node" && unxz_to "$BUNDLE/extension.tar.xz" "$WORK/extension.tar" &&
  tar -xf "$WORK/extension.tar" -C "$WORK" && rm -f "$WORK/extension.tar"; then
  chmod +x "$WORK/bin/node"
  record unpack 0 $(($(now) - t0)) "into $WORK"
else
  record unpack 1 $(($(now) - t0)) "into $WORK"
fi
NODE="$WORK/bin/node"
if ! "$NODE" --version >/dev/null 2>>"$LOG"; then
  # The shipped node needs glibc >= 2.28; a machine with its own node >= 20 can stand in.
  log "the shipped node does not run here (see log.txt); trying the system's"
  NODE=$(command -v node || true)
fi
if [ -z "$NODE" ] || ! "$NODE" --version >/dev/null 2>&1; then
  log "no node runs here: nothing more can be checked"
  exit 1
fi
export PATH="$(dirname "$NODE"):$PATH"
EXT="$WORK/extension"
VL=("$NODE" "$EXT/bin/vitlens.js")
# The report writer finds the dashboard page next to itself, as the CLI's does.
cp "$BUNDLE/check.cjs" "$EXT/dist/gpu-check.cjs"
CHECK=("$NODE" "$EXT/dist/gpu-check.cjs")
[ -n "$PY" ] && export VITLENS_PYTHON="$PY"

# --- Vulkan: Dawn (in onnxruntime's WebGPU EP and in `webgpu`) dlopens libvulkan.so.1, and the
# loader finds the NVIDIA driver through an ICD manifest. Containers with the driver often lack
# either: the bundled loader goes on LD_LIBRARY_PATH, and a manifest is written for a
# libGLX_nvidia.so.0 that has none.
system_loader() {
  # grep reads everything (no -q): under pipefail, ldconfig killed by SIGPIPE would read as "absent".
  ldconfig -p 2>/dev/null | grep 'libvulkan\.so\.1 ' >/dev/null && return 0
  for f in /usr/lib/x86_64-linux-gnu/libvulkan.so.1 /lib/x86_64-linux-gnu/libvulkan.so.1 /usr/lib64/libvulkan.so.1; do
    [ -e "$f" ] && return 0
  done
  return 1
}
unpack_deb() { # deb dest: dpkg-deb where there is one, else the ar archive read in Python
  if command -v dpkg-deb >/dev/null; then dpkg-deb -x "$1" "$2"; return; fi
  "$PYBIN" - "$1" "$2" <<'EOF'
import io, sys, tarfile
data = open(sys.argv[1], "rb").read()
assert data[:8] == b"!<arch>\n", "not a .deb"
i = 8
while i < len(data):
    name, size = data[i:i + 16].decode().strip().rstrip("/"), int(data[i + 48:i + 58])
    body = data[i + 60:i + 60 + size]
    if name.startswith("data.tar"):
        tarfile.open(fileobj=io.BytesIO(body), mode="r:*").extractall(sys.argv[2])
    i += 60 + size + (size & 1)
EOF
}
DEB=$(ls "$BUNDLE"/vulkan/libvulkan1_*.deb 2>/dev/null | head -n1)
LOADER="none"
if [ "$VULKAN" = auto ]; then
  if system_loader; then VULKAN=system; elif [ -n "$DEB" ]; then VULKAN=bundled; else VULKAN=none; fi
fi
case "$VULKAN" in
  system) system_loader && LOADER="system ($(ldconfig -p 2>/dev/null | grep 'libvulkan\.so\.1 ' | head -n1 | sed 's/.*=> //'))" ;;
  bundled)
    if [ -n "$DEB" ] && mkdir -p "$WORK/vulkan" && unpack_deb "$DEB" "$WORK/vulkan" 2>>"$LOG"; then
      export LD_LIBRARY_PATH="$WORK/vulkan/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
      LOADER="bundled $(basename "$DEB") on LD_LIBRARY_PATH"
    else
      LOADER="none (the bundled loader could not be unpacked)"
    fi ;;
esac
ICD=""
if [ -z "${VK_DRIVER_FILES:-}${VK_ICD_FILENAMES:-}" ]; then
  for f in /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json /usr/share/vulkan/icd.d/nvidia_icd.json \
    /etc/vulkan/icd.d/nvidia_icd.json /usr/share/vulkan/icd.d/nvidia_icd.x86_64.json /etc/vulkan/icd.d/nvidia_icd.x86_64.json; do
    if [ -f "$f" ]; then ICD=$f; break; fi
  done
  if [ -z "$ICD" ]; then
    GLX=$(ldconfig -p 2>/dev/null | grep 'libGLX_nvidia\.so\.0 ' | head -n1 | sed 's/.*=> //')
    for f in /usr/lib/x86_64-linux-gnu/libGLX_nvidia.so.0 /usr/local/nvidia/lib64/libGLX_nvidia.so.0 /usr/lib64/libGLX_nvidia.so.0; do
      [ -z "$GLX" ] && [ -f "$f" ] && GLX=$f
    done
    if [ -n "$GLX" ]; then
      mkdir -p "$WORK/icd.d"
      printf '{"file_format_version": "1.0.0", "ICD": {"library_path": "%s", "api_version": "1.3.0"}}\n' "$GLX" >"$WORK/icd.d/nvidia_icd.json"
      ICD="$WORK/icd.d/nvidia_icd.json (written here for $GLX)"
    fi
  fi
  if [ -n "$ICD" ]; then
    # Only the NVIDIA driver, so ORT's Dawn (which cannot be told an adapter) cannot pick lavapipe;
    # VK_ICD_FILENAMES for loaders older than 1.3.207, which do not know VK_DRIVER_FILES.
    export VK_DRIVER_FILES="${ICD%% *}" VK_ICD_FILENAMES="${ICD%% *}"
  fi
fi

MODE=$([ "$QUICK" = 1 ] && echo "quick (dry run: 150 ms per case, no scaling sweep)" || echo "full when the time allows")
envline "started $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(uname -srm), $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo) RAM"
envline "glibc $(ldd --version 2>/dev/null | head -n1 | awk '{print $NF}'); node $("$NODE" --version) ($NODE)"
envline "bundle: $(sed -n 's/.*"cli": "\(.*\)".*/\1/p' "$BUNDLE/manifest.json" 2>/dev/null) from $(sed -n 's/.*"file": "\(.*\)".*/\1/p' "$BUNDLE/manifest.json" 2>/dev/null | head -n1), prepared $(sed -n 's/.*"createdAt": "\(.*\)".*/\1/p' "$BUNDLE/manifest.json" 2>/dev/null)"
envline "Vulkan loader: $LOADER"
envline "Vulkan ICD: ${ICD:-${VK_DRIVER_FILES:-${VK_ICD_FILENAMES:-none set (the loader searches its default folders)}}}"
envline "Python for torch: ${VITLENS_PYTHON:-as the CLI finds it (python3 on PATH, then /usr/bin/python3)}"
envline "mode: $MODE; budget ${BUDGET_S} s"
if command -v nvidia-smi >/dev/null; then
  step nvidia-smi 30 "$OUTDIR/nvidia-smi.txt" "" nvidia-smi
else
  envline "nvidia-smi: not on PATH"
fi

# --- 1. Devices
step devices 120 "$OUTDIR/devices.txt" "" "${VL[@]}" devices
step devices-json 120 "$OUTDIR/devices.json" "" "${VL[@]}" devices --json
# The runtime ids this CLI accepts: its own list, printed for an id it does not know (exit 2).
"${VL[@]}" bench --backend '?' "$ROOT/fixtures/configs/soft/SOFT_Tiny.yaml" >"$OUTDIR/backends.txt" 2>&1
ALSO_ARGS=()
[ -n "$ALSO" ] && ALSO_ARGS=(--also "$ALSO")
RUNTIMES=$("${CHECK[@]}" plan --devices "$OUTDIR/devices.json" --usage "$OUTDIR/backends.txt" "${ALSO_ARGS[@]}" \
  --out "$OUTDIR/plan.json" 2>>"$LOG")
log "runtimes: $(echo $RUNTIMES)"

# --- 2. Inference: short, and before the benchmark so a long benchmark cannot crowd it out.
for rt in $RUNTIMES; do
  step "infer-tiny-$rt" 120 "$OUTDIR/infer-tiny-$rt.json" "tiny checkpoint, 64x64 input" \
    "${VL[@]}" infer "$ROOT/fixtures/configs/tiny_soft.vitlens.yaml" --backend "$rt" \
    --input-tensor "$ROOT/fixtures/ref/tiny_input_64x64.bin" --shape 1,3,64,64 --json
  step "infer-soft_tiny-$rt" 120 "$OUTDIR/infer-soft_tiny-$rt.json" "random weights (seed 0), 2 photos, attention maps" \
    "${VL[@]}" infer "$ROOT/fixtures/configs/soft/SOFT_Tiny.yaml" --backend "$rt" --seed 0 \
    --image "$ROOT/fixtures/images/chelsea.png" --image "$ROOT/fixtures/images/coffee.jpg" --maps --json
done

# --- 3. Benchmark, one run per runtime; each one's time from what is left (plan.ts benchSlot).
RESERVE_S=30 # merge and summary
set -- $RUNTIMES
LEFT=$#
BENCH_JSON=()
for rt in $RUNTIMES; do
  remaining=$((DEADLINE - $(now) - RESERVE_S))
  if [ "$remaining" -lt 15 ]; then
    log "skip bench-$rt: out of time"
    record "bench-$rt" -1 0 "out of time"
    LEFT=$((LEFT - 1))
    continue
  fi
  # "limit<TAB>mode<TAB>flags": how long this run may take, and how thorough it is then.
  limit=""
  IFS=$'\t' read -r limit mode flags < <("${CHECK[@]}" slot --remaining="$remaining" --left="$LEFT" \
    $([ "$QUICK" = 1 ] && echo --quick) 2>>"$LOG")
  if [ -z "$limit" ]; then # the helper failed (log.txt): a short run rather than none
    limit=$remaining mode=short flags="--budget-ms 250 --no-scaling"
  fi
  # shellcheck disable=SC2086 # flags are words by design
  step "bench-$rt" "$limit" "$OUTDIR/bench-$rt.txt" "$mode${flags:+: $flags}" \
    "${VL[@]}" bench "$ROOT/fixtures/configs/soft/SOFT_Tiny.yaml" --backend "$rt" $flags \
    --out "$OUTDIR/bench-$rt.json" --html "$OUTDIR/bench-$rt.html"
  [ -f "$OUTDIR/bench-$rt.json" ] && BENCH_JSON+=("$OUTDIR/bench-$rt.json")
  LEFT=$((LEFT - 1))
done

# --- 4. One report, the summary.
if [ ${#BENCH_JSON[@]} -gt 0 ]; then
  step merge 60 /dev/null "${#BENCH_JSON[@]} runs" "${CHECK[@]}" merge --config "$ROOT/fixtures/configs/soft/SOFT_Tiny.yaml" \
    --json "$OUTDIR/bench.json" --html "$OUTDIR/report.html" "${BENCH_JSON[@]}"
fi
WALL=$(($(now) - START))
"${CHECK[@]}" summary --dir "$OUTDIR" --root "$ROOT" --wall "$WALL" \
  --title "ViT Lens GPU check, $(date -u +%Y-%m-%dT%H:%M:%SZ), $MODE" 2>>"$LOG" || FAILED=1
rm -rf "$WORK"
exit "$FAILED"
