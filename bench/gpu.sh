#!/usr/bin/env bash
# shellcheck disable=SC2016 # the single-quoted node -e programs are JavaScript, not shell
# The HOC preset protocol on one GPU: this package's native trainer vs an idiomatic PyTorch loop.
#
# Run from anywhere inside a copy of the repository, on a machine with an NVIDIA GPU, python3 with
# pip's CUDA torch 2.x, cmake, g++ and nvcc. No node and no internet are needed there if node and
# node_modules travel with the tree (see bench/README-gpu.md):
#
#   bash bench/gpu.sh --smoke        # quick check of the whole chain: 500 images per class, 2 epochs
#   bash bench/gpu.sh                # the full protocol (100k CIFAKE train images, up to 30 epochs)
#
# Steps: find node -> check node_modules, python torch + CUDA, the data -> build the addon against
# python torch's libtorch, then the TypeScript -> `cifake info --json` must report CUDA ->
# decode the data once (untimed) -> train each variant, timing its wall clock -> a markdown table
# in bench/out/gpu/table.md, with every log, run directory and result JSON beside it.
#
# Variants (--variants a,b,... or all; default: the first four):
#   native-b32        cifake train --preset hoc (batch 32, Adam lr 1e-3, <= 30 epochs, ES patience 3)
#   python-b32        bench/gpu_reference.py, the same protocol as a typical PyTorch user writes it
#   native-b32-bf16   + --amp bf16
#   native-b256       + --batch-size 256 --lr $B256_LR (default 0.003 ~ sqrt(256/32) x 1e-3:
#                     square-root scaling, the usual rule for Adam; linear scaling, 8e-3, is
#                     the aggressive end)
#   python-b32-bf16   the reference under torch.autocast(bfloat16)
#   python-b256       the reference at batch 256, lr $B256_LR
#
# Options:
#   --smoke             quick check: --limit 500 (per class) and 2 epochs for every variant
#   --limit N --epochs N  override the subset / epochs (any mode)
#   --variants LIST     comma-separated names from above, or `all`
#   --device D          cuda (default) | cuda:N | cpu (cpu only to test this script: bf16 skipped)
#   --no-build          reuse build/Release/cifake_native.node and dist/ as they are
#   --pack              run where node and node_modules are (not on the GPU machine): write
#                       bench/out/gpu-carry.tar.xz = node + the node_modules the CLI and the addon
#                       build need (~33 MiB of 144) + a compiled dist/; carried with the tree, this
#                       script unpacks it when node or node_modules are missing
# Environment:
#   NODE                node binary (else `node` on PATH, else .node/bin/node, else unpacked from
#                       node-*.tar.xz / node-*.tar.gz in the repo root or bench/ into .node/)
#   PYTHON              python with torch (default python3)
#   CIFAKE_DATA         CIFAKE zip or folder (else ../shared/data/cifake-dev.zip, shared/data/cifake-dev.zip)
#   B256_LR             learning rate of the batch-256 variants (default 0.003)
#   PY_WORKERS          DataLoader num_workers of the reference (default 4)
#   BENCH_THREADS       pass --threads N to both systems (CPU test runs)
#   GPU_BENCH_OUT       output folder (default bench/out/gpu)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

die() {
  printf '\ngpu.sh: %s\n' "$*" >&2
  exit 1
}
note() { printf '== %s\n' "$*" >&2; }

# --- options ---------------------------------------------------------------------------------
SMOKE=0
BUILD=1
PACK=0
DEVICE=cuda
LIMIT=
EPOCHS=
VARIANTS="native-b32,python-b32,native-b32-bf16,native-b256"
ALL_VARIANTS="native-b32,python-b32,native-b32-bf16,native-b256,python-b32-bf16,python-b256"
while [ $# -gt 0 ]; do
  case "$1" in
    --smoke) SMOKE=1 ;;
    --no-build) BUILD=0 ;;
    --pack) PACK=1 ;;
    --device) DEVICE="${2:?--device needs a value}"; shift ;;
    --limit) LIMIT="${2:?--limit needs a value}"; shift ;;
    --epochs) EPOCHS="${2:?--epochs needs a value}"; shift ;;
    --variants) VARIANTS="${2:?--variants needs a value}"; shift ;;
    -h | --help) sed -n '3,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option '$1' (see --help)" ;;
  esac
  shift
done
[ "$VARIANTS" = all ] && VARIANTS="$ALL_VARIANTS"
IFS=',' read -r -a VARIANT_LIST <<<"$VARIANTS"
for v in "${VARIANT_LIST[@]}"; do
  case ",$ALL_VARIANTS," in *",$v,"*) ;; *) die "unknown variant '$v' (known: $ALL_VARIANTS)" ;; esac
done
if [ "$SMOKE" = 1 ]; then
  LIMIT="${LIMIT:-500}"
  EPOCHS="${EPOCHS:-2}"
fi
case "$DEVICE" in cuda | cuda:[0-9]* | cpu) ;; *) die "--device must be cuda, cuda:N or cpu, got '$DEVICE'" ;; esac
B256_LR="${B256_LR:-0.003}"
PY_WORKERS="${PY_WORKERS:-4}"
PYTHON="${PYTHON:-python3}"
OUT="${GPU_BENCH_OUT:-$ROOT/bench/out/gpu}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"

# --- 1. node -----------------------------------------------------------------------------------
NODE_HELP="gpu.sh needs node >= 20.9 (this machine has none on PATH, and there is no internet to fetch it). Provide it by one of:
  - NODE=/path/to/bin/node bash bench/gpu.sh
  - put the official Linux build next to the repo, e.g. node-v20.19.5-linux-x64.tar.xz from
    https://nodejs.org/dist/ in the repo root or bench/ (this script unpacks it into .node/), or unpack it yourself:
      mkdir -p .node && tar -C .node --strip-components=1 -xJf node-v20.19.5-linux-x64.tar.xz
and carry node_modules too (npm install is impossible offline): run \`npm ci\` on a Linux x64 machine
with internet and copy the repo's node_modules/ along."

find_node() {
  if [ -n "${NODE:-}" ]; then
    local n
    n="$(command -v -- "$NODE" || true)"
    if [ -z "$n" ] || [ ! -x "$n" ]; then die "NODE=$NODE is not an executable"; fi
    printf '%s\n' "$n"
    return
  fi
  if command -v node >/dev/null 2>&1; then
    command -v node
    return
  fi
  if [ -x "$ROOT/.node/bin/node" ]; then
    printf '%s\n' "$ROOT/.node/bin/node"
    return
  fi
  local tarball="" t
  for t in "$ROOT"/node-*.tar.xz "$ROOT"/bench/node-*.tar.xz "$ROOT"/node-*.tar.gz "$ROOT"/bench/node-*.tar.gz; do
    if [ -f "$t" ]; then tarball="$t"; break; fi
  done
  if [ -n "$tarball" ]; then
    note "unpacking $tarball into .node/"
    mkdir -p "$ROOT/.node"
    case "$tarball" in
      *.xz) tar -C "$ROOT/.node" --strip-components=1 -xJf "$tarball" ;;
      *) tar -C "$ROOT/.node" --strip-components=1 -xzf "$tarball" ;;
    esac || die "could not unpack $tarball"
    [ -x "$ROOT/.node/bin/node" ] || die "$tarball holds no bin/node"
    printf '%s\n' "$ROOT/.node/bin/node"
    return
  fi
  die "$NODE_HELP"
}
# A carry tarball made by --pack (node, the node_modules this needs, dist/) fills in what is missing.
CARRY=""
for t in "$ROOT/bench/out/gpu-carry.tar.xz" "$ROOT/gpu-carry.tar.xz"; do
  if [ -f "$t" ]; then CARRY="$t"; break; fi
done
if [ "$PACK" = 0 ] && [ -n "$CARRY" ] && { [ ! -f node_modules/commander/package.json ] ||
  { [ -z "${NODE:-}" ] && ! command -v node >/dev/null 2>&1 && [ ! -x .node/bin/node ]; }; }; then
  note "unpacking $CARRY (node, node_modules, dist/) into the tree"
  tar -C "$ROOT" -xJf "$CARRY" || die "could not unpack $CARRY"
fi
NODE="$(find_node)"
case "$NODE" in /*) ;; *) NODE="$PWD/$NODE" ;; esac
"$NODE" -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a === 20 && b >= 9) ? 0 : 1)' 2>/dev/null ||
  die "$NODE is node $("$NODE" --version 2>&1 || echo '?'); this package needs >= 20.9.
$NODE_HELP"
# CMakeLists.txt and cmake-js run plain `node`: put this one first on PATH whatever its file name.
mkdir -p "$OUT/bin"
ln -sfn "$NODE" "$OUT/bin/node"
export PATH="$OUT/bin:$PATH"
note "node $("$NODE" --version) ($NODE)"

NEED_MODULES="commander zod yauzl cli-progress sharp"
[ "$BUILD" = 1 ] && NEED_MODULES="$NEED_MODULES cmake-js/bin/cmake-js node-addon-api node-api-headers"
# shellcheck disable=SC2086
"$NODE" -e 'const miss = process.argv.slice(1).filter((m) => { try { require.resolve(m, { paths: [process.cwd()] }); return false; } catch { return true; } });
if (miss.length) { console.error(`missing from node_modules: ${miss.join(", ")}`); process.exit(1); }' $NEED_MODULES ||
  die "node_modules is missing or incomplete, and npm install is impossible offline: run \`npm ci\` on a Linux x64
machine with internet (same package-lock.json) and carry the repo's node_modules/ with the tree."

# --- --pack: what a machine without node and internet needs, in one tarball -------------------
if [ "$PACK" = 1 ]; then
  "$NODE" -e 'require.resolve("typescript/bin/tsc", { paths: [process.cwd()] })' 2>/dev/null || die "--pack needs typescript in node_modules (npm ci)"
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  mkdir -p "$tmp/.node/bin"
  cp "$(readlink -f "$NODE")" "$tmp/.node/bin/node"
  note "compiling the TypeScript into the pack's dist/"
  "$NODE" node_modules/typescript/bin/tsc -p tsconfig.json --outDir "$tmp/dist" || die "tsc failed"
  # What the compiled CLI loads (found by loading it) and what the addon build runs, with their
  # dependencies: not vega (reports only), typescript, mocha, playwright...
  ln -s "$ROOT/node_modules" "$tmp/node_modules"
  cp package.json "$tmp/" # the CLI reads its version at load
  "$NODE" -e 'const fs = require("fs"), path = require("path"), nm = fs.realpathSync("node_modules"), seen = new Set();
require(process.argv[1]);
const pkgDir = (f) => { const parts = path.relative(nm, f).split(path.sep); let i = parts.lastIndexOf("node_modules") + 1;
  return path.join(nm, ...parts.slice(0, i + (parts[i].startsWith("@") ? 2 : 1))); };
const find = (name, dir) => { for (;;) { const p = path.join(dir, "node_modules", name); if (fs.existsSync(path.join(p, "package.json"))) return fs.realpathSync(p);
  const up = path.dirname(dir); if (up === dir) return null; dir = up; } };
const walk = (dir) => { if (seen.has(dir)) return; seen.add(dir); const pj = JSON.parse(fs.readFileSync(path.join(dir, "package.json")));
  for (const d of Object.keys({ ...pj.dependencies, ...pj.optionalDependencies })) { const p = find(d, dir); if (p) walk(p); } };
for (const f of Object.keys(require.cache)) if (f.startsWith(nm + path.sep)) walk(pkgDir(f));
for (const n of process.argv.slice(2)) { const p = find(n, process.cwd()); if (!p) { console.error(`missing ${n}`); process.exit(1); } walk(p); }
for (const d of seen) console.log(path.join("node_modules", path.relative(nm, d)));' \
    "$tmp/dist/bin/cifake.js" cmake-js node-addon-api node-api-headers >"$tmp/modules.txt" ||
    die "could not list the node_modules to pack (see above; npm ci makes node_modules complete)"
  rm "$tmp/node_modules"
  while read -r m; do cp -a --parents "$m" "$tmp/"; done <"$tmp/modules.txt"
  mkdir -p "$ROOT/bench/out"
  note "writing bench/out/gpu-carry.tar.xz ($(wc -l <"$tmp/modules.txt") packages, node $("$NODE" --version))"
  tar -C "$tmp" -cf - .node node_modules dist | xz -T0 -3 >"$ROOT/bench/out/gpu-carry.tar.xz.tmp"
  mv "$ROOT/bench/out/gpu-carry.tar.xz.tmp" "$ROOT/bench/out/gpu-carry.tar.xz"
  note "done: $(du -h "$ROOT/bench/out/gpu-carry.tar.xz" | cut -f1). Carry bench/out/gpu-carry.tar.xz with the tree; gpu.sh unpacks it there."
  exit 0
fi

# --- 2. python torch, CUDA ---------------------------------------------------------------------
command -v "$PYTHON" >/dev/null 2>&1 || die "no $PYTHON (set PYTHON=/path/to/python3 with torch installed)"
PY_TORCH="$("$PYTHON" -c 'import torch, numpy; print(torch.__version__, torch.version.cuda, int(torch.cuda.is_available()))' 2>"$OUT/python-torch.err")" ||
  die "$PYTHON cannot import torch and numpy: $(tail -n 3 "$OUT/python-torch.err")"
PY_TORCH="$(tail -n 1 <<<"$PY_TORCH")"
read -r PY_TORCH_VERSION PY_TORCH_CUDA PY_CUDA_OK <<<"$PY_TORCH"
note "python torch $PY_TORCH_VERSION (CUDA $PY_TORCH_CUDA) from $(command -v "$PYTHON")"
if [ "$DEVICE" != cpu ]; then
  [ "$PY_TORCH_CUDA" != None ] || die "$PYTHON's torch $PY_TORCH_VERSION is a CPU-only build; the GPU benchmark needs pip's CUDA torch"
  [ "$PY_CUDA_OK" = 1 ] || die "$PYTHON's torch $PY_TORCH_VERSION (CUDA $PY_TORCH_CUDA) sees no GPU (nvidia-smi: $(nvidia-smi -L 2>&1 | head -n 1))"
fi

# --- 3. data ----------------------------------------------------------------------------------
DATA="${CIFAKE_DATA:-}"
if [ -z "$DATA" ]; then
  for d in "$ROOT/../shared/data/cifake-dev.zip" "$ROOT/shared/data/cifake-dev.zip"; do
    if [ -e "$d" ]; then DATA="$d"; break; fi
  done
fi
[ -n "$DATA" ] || die "no data: set CIFAKE_DATA=/path/to/cifake.zip (Kaggle layout: train/REAL, train/FAKE, test/REAL, test/FAKE),
or put it at ../shared/data/cifake-dev.zip or shared/data/cifake-dev.zip (relative to the repo root $ROOT)"
[ -e "$DATA" ] || die "CIFAKE_DATA=$DATA does not exist"
DATA="$(cd "$(dirname "$DATA")" && pwd)/$(basename "$DATA")"
note "data $DATA"

# --- 4. build ---------------------------------------------------------------------------------
# Load pip's CUDA libraries (cuDNN, cuBLAS, ... in site-packages/nvidia/*/lib) in node without
# python's help: `import torch` preloads them, a plain dlopen of libtorch_cuda.so may not find them.
TORCH_LIB_PATH="$("$PYTHON" - <<'EOF'
import glob, os
import torch
dirs = [os.path.join(os.path.dirname(torch.__file__), "lib")]
try:
    import nvidia
    for p in nvidia.__path__:
        dirs += sorted(glob.glob(os.path.join(p, "*", "lib")) + glob.glob(os.path.join(p, "*", "*", "lib")))
except ImportError:
    pass
print(":".join(d for d in dirs if os.path.isdir(d)))
EOF
)"
node_run() { LD_LIBRARY_PATH="$TORCH_LIB_PATH${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$NODE" "$@"; }

if [ "$BUILD" = 1 ]; then
  TORCH_PREFIX="$("$PYTHON" -c 'import torch.utils; print(torch.utils.cmake_prefix_path)')"
  [ -f "$TORCH_PREFIX/Torch/TorchConfig.cmake" ] || die "$PYTHON's torch has no CMake config at $TORCH_PREFIX/Torch"
  export Torch_DIR="$TORCH_PREFIX/Torch"
  unset LIBTORCH
  if ! command -v nvcc >/dev/null 2>&1 && [ -x /usr/local/cuda/bin/nvcc ]; then export PATH="$PATH:/usr/local/cuda/bin"; fi
  export TORCH_CUDA_ARCH_LIST="${TORCH_CUDA_ARCH_LIST:-9.0}" # Hopper; no CUDA kernels of ours, it only quiets detection
  note "building the addon against $Torch_DIR (log: $OUT/build-native.log)"
  rm -rf "$ROOT/build" # a carried build/ may hold another libtorch's CMake cache
  if ! node_run scripts/build-native.js --force >"$OUT/build-native.log" 2>&1; then
    tail -n 40 "$OUT/build-native.log" >&2
    die "building the native addon failed (full log: $OUT/build-native.log)"
  fi
  grep -E 'cifake-torch: (libtorch|libjpeg)' "$OUT/build-native.log" | sed 's/^-- /   /' >&2 || true
  if "$NODE" -e 'require.resolve("typescript/bin/tsc", { paths: [process.cwd()] })' 2>/dev/null; then
    note "compiling the TypeScript (log: $OUT/build-ts.log)"
    if ! "$NODE" "$("$NODE" -p 'require.resolve("typescript/bin/tsc", { paths: [process.cwd()] })')" -p tsconfig.json >"$OUT/build-ts.log" 2>&1; then
      tail -n 40 "$OUT/build-ts.log" >&2
      die "tsc failed (full log: $OUT/build-ts.log)"
    fi
  elif [ -f dist/bin/cifake.js ]; then
    note "WARNING: no typescript in node_modules: using the dist/ that came with the tree (make sure it matches the sources)"
  else
    die "no typescript in node_modules and no dist/: carry node_modules with dev dependencies, or a built dist/"
  fi
fi
[ -f build/Release/cifake_native.node ] || die "no build/Release/cifake_native.node (run without --no-build)"
LD_LIBRARY_PATH="$TORCH_LIB_PATH${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" ldd build/Release/cifake_native.node >"$OUT/ldd.txt" 2>&1 || true
[ -f dist/bin/cifake.js ] || die "no dist/bin/cifake.js (run without --no-build)"

# --- 5. cifake info: CUDA must be there --------------------------------------------------------
if ! node_run dist/bin/cifake.js info --json >"$OUT/info.json" 2>"$OUT/info.err"; then
  cat "$OUT/info.err" >&2
  die "\`cifake info --json\` failed (the addon does not load?); ldd says: $(ldd build/Release/cifake_native.node 2>&1 | grep 'not found' || echo 'all libraries found')"
fi
INFO="$("$NODE" -e 'const i = require(process.argv[1]); const d = i.cuda.devices.map((x) => `${x.name} (sm ${x.capability})`).join(", ");
console.log(`libtorch ${i.libtorch} (${i.libtorchFrom}); cuda built ${i.cuda.built}, available ${i.cuda.available}${d ? `: ${d}` : ""}`);
process.exit(i.cuda.available && i.cuda.devices.length > 0 ? 0 : 3)' "$OUT/info.json")" && CUDA_OK=1 || CUDA_OK=0
note "cifake info: $INFO"
if [ "$DEVICE" != cpu ] && [ "$CUDA_OK" != 1 ]; then
  die "the addon reports no CUDA: $INFO
  - 'cuda built false': libtorch_cuda was not linked; check the CUDA line in $OUT/build-native.log (CMakeLists.txt links with --no-as-needed)
  - 'built true, available false': the driver/GPU is not visible to node, or a CUDA library did not load
    (LD_LIBRARY_PATH tried: $TORCH_LIB_PATH; the addon's libraries: $OUT/ldd.txt)"
fi

# --- 6. decode the data once, outside the timings -----------------------------------------------
COMMON_NATIVE=(--preset hoc --data "$DATA" --device "$DEVICE" --out-dir "$OUT/runs" --json)
COMMON_PY=(--data "$DATA" --device "$DEVICE" --workers "$PY_WORKERS")
[ -n "$LIMIT" ] && COMMON_NATIVE+=(--limit "$LIMIT") && COMMON_PY+=(--limit "$LIMIT")
[ -n "$EPOCHS" ] && COMMON_NATIVE+=(--epochs "$EPOCHS") && COMMON_PY+=(--epochs "$EPOCHS")
[ -n "${BENCH_THREADS:-}" ] && COMMON_NATIVE+=(--threads "$BENCH_THREADS") && COMMON_PY+=(--threads "$BENCH_THREADS")
if [ -z "$LIMIT" ]; then
  # With --limit the native trainer decodes its subset itself (never cached); the test split is
  # decoded (and cached) by the first run either way.
  note "decoding the data for the native trainer (cached in ~/.cache/cifake-torch; untimed)"
  node_run dist/bin/cifake.js data prepare --data "$DATA" --json >"$OUT/prepare-native.log" 2>&1 ||
    { tail -n 20 "$OUT/prepare-native.log" >&2; die "cifake data prepare failed"; }
fi
note "decoding the data for the python reference (cached as .npy; untimed)"
"$PYTHON" bench/gpu_reference.py --data "$DATA" --prepare-only >"$OUT/prepare-python.log" 2>&1 ||
  { tail -n 20 "$OUT/prepare-python.log" >&2; die "the python reference could not decode the data"; }

# --- 7. the runs ------------------------------------------------------------------------------
{
  echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "host: $(uname -n) ($(nproc) CPUs)"
  echo "gpu: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | head -n 1 || echo none)"
  echo "node: $("$NODE" --version)"
  echo "python: $("$PYTHON" --version 2>&1), torch $PY_TORCH_VERSION, CUDA $PY_TORCH_CUDA"
  echo "addon: $INFO"
  if git rev-parse --short HEAD >/dev/null 2>&1; then
    echo "commit: $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- 2>/dev/null || echo ' + uncommitted changes')"
  fi
  echo "data: $DATA"
  echo "mode: $([ "$SMOKE" = 1 ] && echo smoke || echo full)${LIMIT:+, limit $LIMIT per class}${EPOCHS:+, $EPOCHS epochs}; device $DEVICE"
} >"$OUT/env.txt"

now() { date +%s.%N; }
# This invocation's results only: drop every variant's files from earlier runs.
for v in ${ALL_VARIANTS//,/ }; do rm -rf "${OUT:?}/runs/$v" "$OUT/$v.json" "$OUT/$v.status" "$OUT/$v.log"; done
FAILED=0
RAN=()
for v in "${VARIANT_LIST[@]}"; do
  case "$v" in
    native-b32) cmd=(node_run dist/bin/cifake.js train "${COMMON_NATIVE[@]}" --name "$v") ;;
    native-b32-bf16) cmd=(node_run dist/bin/cifake.js train "${COMMON_NATIVE[@]}" --name "$v" --amp bf16) ;;
    native-b256) cmd=(node_run dist/bin/cifake.js train "${COMMON_NATIVE[@]}" --name "$v" --batch-size 256 --lr "$B256_LR") ;;
    python-b32) cmd=("$PYTHON" bench/gpu_reference.py "${COMMON_PY[@]}" --out "$OUT/$v.json") ;;
    python-b32-bf16) cmd=("$PYTHON" bench/gpu_reference.py "${COMMON_PY[@]}" --out "$OUT/$v.json" --amp bf16) ;;
    python-b256) cmd=("$PYTHON" bench/gpu_reference.py "${COMMON_PY[@]}" --out "$OUT/$v.json" --batch-size 256 --lr "$B256_LR") ;;
  esac
  if [ "$DEVICE" = cpu ] && [[ "$v" == *bf16 ]]; then
    note "$v: skipped (bf16 needs CUDA)"
    echo "skipped bf16 needs CUDA" >"$OUT/$v.status"
    RAN+=("$v")
    continue
  fi
  note "$v: ${cmd[*]}"
  printf '%s\n' "${cmd[*]}" >"$OUT/$v.log"
  t0="$(now)"
  set +e
  # The log keeps everything; the terminal gets all but the native per-batch progress events.
  "${cmd[@]}" 2>&1 | tee -a "$OUT/$v.log" | grep --line-buffered -v '"event":"progress"'
  rc="${PIPESTATUS[0]}"
  set -e
  t1="$(now)"
  wall="$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')"
  echo "$rc $wall" >"$OUT/$v.status"
  if [ "$rc" != 0 ]; then
    FAILED=1
    note "$v: FAILED with exit code $rc after $wall s (log: $OUT/$v.log)"
  else
    note "$v: done in $wall s"
  fi
  RAN+=("$v")
done

# --- 8. the table -----------------------------------------------------------------------------
"$PYTHON" - "$OUT" "$DEVICE" "${RAN[@]}" <<'EOF' | tee "$OUT/table.md"
import json, os, statistics, sys

out, device, variants = sys.argv[1], sys.argv[2], sys.argv[3:]


def read_json(p):
    with open(p) as f:
        return json.load(f)


def last_error(v):
    """The last line of the log that looks like an error, else its last line."""
    try:
        lines = [l.strip() for l in open(os.path.join(out, v + ".log")) if l.strip() and '"event":"progress"' not in l]
    except OSError:
        return ""
    errors = [l for l in lines if "error" in l.lower() or l.startswith(("cifake:", "gpu_reference.py:"))]
    return ((errors or lines or [""])[-1])[:200].replace("|", "/")


rows = {}
for v in variants:
    status = open(os.path.join(out, v + ".status")).read().split()
    r = {"variant": v, "system": v.split("-")[0]}
    if status[0] == "skipped":
        r["error"] = "skipped: " + " ".join(status[1:])
    elif status[0] != "0":
        r["error"] = f"FAILED (exit {status[0]}): {last_error(v)}"
    r["wall"] = float(status[1]) if status[0] not in ("skipped",) else None
    try:
        if "error" in r:
            pass
        elif r["system"] == "native":
            run = os.path.join(out, "runs", v)
            m = read_json(os.path.join(run, "metrics.json"))
            c = read_json(os.path.join(run, "config.json"))
            d = read_json(os.path.join(run, "data.json"))
            hist = [json.loads(l) for l in open(os.path.join(run, "history.jsonl")) if l.strip()]
            n = d["train"]["count"]
            r.update(device=m["device"], batch=c["batchSize"], lr=c["optimizer"]["lr"], amp=c.get("amp", "none"),
                     epochs=m["epochsRun"], best=m["bestEpoch"], train_s=m["trainSeconds"], train_n=n,
                     median_ips=statistics.median(h["imagesPerSec"] for h in hist),
                     test_acc=(m["metrics"]["test"] or {}).get("accuracy"), params=m["parameters"])
        else:
            p = read_json(os.path.join(out, v + ".json"))
            r.update(device=p["device"], batch=p["batch_size"], lr=p["lr"], amp=p["amp"], epochs=p["epochs_run"],
                     best=p["best_epoch"], train_s=p["train_seconds"], train_n=p["train_count"],
                     median_ips=p["median_epoch_images_per_sec"], test_acc=p["test_acc"], params=p["parameters"],
                     workers=p["num_workers"])
    except (OSError, KeyError, ValueError) as e:
        r["error"] = f"no results ({type(e).__name__}: {e})"
    if "error" not in r:
        r["s_per_epoch"] = r["train_s"] / r["epochs"]
        r["ips"] = r["train_n"] * r["epochs"] / r["train_s"]
    rows[v] = r

print("## HOC preset protocol on GPU: native (cifake-torch) vs idiomatic PyTorch\n")
for line in open(os.path.join(out, "env.txt")):
    print(f"- {line.rstrip()}")
print()
base = rows.get("python-b32")
base_ok = base is not None and "error" not in base
print("| run | system | device | batch | lr | amp | epochs run (best) | train s | s/epoch | total wall s | img/s | test acc | python-b32 s/epoch ÷ this |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
for v, r in rows.items():
    if "error" in r:
        wall = f"{r['wall']:.1f}" if r.get("wall") is not None else "-"
        print(f"| {v} | {r['system']} | {r['error']} | | | | | | | {wall} | | | |")
        continue
    acc = f"{100 * r['test_acc']:.2f}%" if r["test_acc"] is not None else "-"
    speed = f"{base['s_per_epoch'] / r['s_per_epoch']:.2f}x" if base_ok else "-"
    system = r["system"] + (f" ({r['workers']} workers)" if r["system"] == "python" else "")
    print(f"| {v} | {system} | {r['device']} | {r['batch']} | {r['lr']:g} | {r['amp']} | {r['epochs']} ({r['best']}) | "
          f"{r['train_s']:.1f} | {r['s_per_epoch']:.2f} | {r['wall']:.1f} | {r['ips']:.0f} | {acc} | {speed} |")
print()
print("train s: training passes only (no validation), summed over epochs; total wall: the whole process (start-up, "
      "CUDA init, reading the decoded data, validation, test); img/s: train images x epochs / train s.")
pairs = [(p, n) for p, n in (("python-b32", "native-b32"), ("python-b32-bf16", "native-b32-bf16"), ("python-b256", "native-b256"))
         if p in rows and n in rows and "error" not in rows[p] and "error" not in rows[n]]
for p, n in pairs:
    a, b = rows[p], rows[n]
    print(f"\n**python/native, {n.replace('native-', '')}:** per epoch {a['s_per_epoch'] / b['s_per_epoch']:.2f}x, "
          f"total train s {a['train_s'] / b['train_s']:.2f}x ({a['epochs']} vs {b['epochs']} epochs), "
          f"total wall {a['wall'] / b['wall']:.2f}x; test acc {100 * a['test_acc']:.2f}% vs {100 * b['test_acc']:.2f}%")
for v, r in rows.items():
    if "error" not in r and device != "cpu" and not str(r["device"]).startswith("cuda"):
        print(f"\nWARNING: {v} ran on {r['device']}, not on the GPU")
EOF

note "table: $OUT/table.md; logs, results and run directories: $OUT/"
[ "$FAILED" = 0 ] || die "some runs failed: see the table and their logs"
