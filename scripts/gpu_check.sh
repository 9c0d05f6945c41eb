#!/usr/bin/env bash
# One-command GPU check for a lent GPU session (issue 22 item 1); at most ~8 minutes of wall time.
#
#   bash scripts/gpu_check.sh               # on the GPU machine, from the checkout's root
#   bash scripts/gpu_check.sh --cpu-smoke   # the same stages at toy sizes on the CPU
#
# Carried with the checkout (ignored paths, see .gitignore):
#   .gpu_carry/stylegan2-ada-pytorch/   NVlabs/stylegan2-ada-pytorch (fetch tool); never committed
#   .gpu_carry/wheels/*.whl             optional: robustrep's wheel and extras (pip wheel --no-deps .)
# Every stage writes its own file under $OUT (default ./gpu_check_out), so a stage killed at its
# limit loses only itself. The whole script stops within $BUDGET_S seconds (default 470, under
# 8 min): each stage gets its own limit or what is left of the budget, whichever is less, and a
# stage that would get under 20 s is skipped (named in its file); the stages run in the order of
# what matters most (the step and sec/kimg against stylegan2-ada first). Each file starts with the GPU name, torch
# and CUDA versions. The stylegan2-ada copy is patched in a scratch folder for torch >= 2.11:
# InfiniteSampler calls super().__init__() without the dataset, and custom_ops uses the module
# that torch.utils.cpp_extension.load returns instead of importlib.import_module.
set -u
SMOKE=0
[ "${1:-}" = "--cpu-smoke" ] && SMOKE=1
ROOT=$(pwd)
OUT=${OUT:-$ROOT/gpu_check_out}
WORK=$(mktemp -d)
PY=${PYTHON:-python3}
[ -x "$ROOT/.venv/bin/python" ] && PY=${PYTHON:-$ROOT/.venv/bin/python}
REF_SRC=$ROOT/.gpu_carry/stylegan2-ada-pytorch
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 TORCH_EXTENSIONS_DIR=$WORK/torch_ext TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0}

START=$(date +%s)
BUDGET_S=${BUDGET_S:-470}
SCALE=1  # the smoke run gets longer limits: a shared CPU is slow, the point there is the logic
if [ $SMOKE = 1 ]; then
  SCALE=5; BUDGET_S=${SMOKE_BUDGET_S:-1800}; DEV=cpu; RES=32; BATCH=4; STEPS=12; ITERS=1; CLS_MODEL=resnet10t; CLS_BATCH=8
  NET="--channel-base 256 --channel-max 32 --z-dim 32 --w-dim 32 --mapping-layers 2 --mbstd 4"
  GAN_NET="--channel-base 256 --channel-max 32 --z-dim 32 --w-dim 32 --mapping-layers 2 --mbstd-group 4 --fp16-res 0"
else
  DEV=cuda; RES=256; BATCH=32; STEPS=40; ITERS=5; CLS_MODEL=wrn28_10; CLS_BATCH=128
  NET=""; GAN_NET=""
fi

header() {  # the machine line every output file starts with
  $PY - <<'EOF'
import torch
name = torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU (no CUDA)"
print(f"# {name}; torch {torch.__version__}; CUDA {torch.version.cuda}")
EOF
}

stage() {  # stage NAME LIMIT_S COMMAND...: output to $OUT/NAME.txt, never through a pipe
  local name=$1 limit=$(( $2 * SCALE )); shift 2
  local file=$OUT/$name.txt
  local left=$(( START + BUDGET_S - $(date +%s) ))
  if [ $left -lt 20 ]; then
    echo "# skipped: ${left} s of the ${BUDGET_S} s budget left (BUDGET_S=... to allow more)" > "$file"
    echo "[$name] skipped (budget) -> $file"
    return
  fi
  [ $left -lt $limit ] && limit=$left
  header > "$file" 2>&1
  echo "# \$ $*" >> "$file"
  local start=$(date +%s)
  timeout --kill-after=10 "$limit" "$@" >> "$file" 2>&1
  local rc=$?
  echo "# rc $rc, $(( $(date +%s) - start )) s" >> "$file"
  echo "[$name] rc $rc ($(( $(date +%s) - start )) s) -> $file"
}

# 1. install what is carried (the GPU machine has torch, timm, pytest; not robustrep)
if ! $PY -c "import robustrep.tasks" 2>/dev/null; then
  if ls "$ROOT"/.gpu_carry/wheels/*.whl >/dev/null 2>&1; then
    $PY -m pip install --no-index --no-deps "$ROOT"/.gpu_carry/wheels/*.whl > "$OUT/install.txt" 2>&1
  else
    $PY -m pip install --no-index --no-deps --no-build-isolation -e "$ROOT" > "$OUT/install.txt" 2>&1
  fi
fi

# 2. the reference, patched in a scratch copy
REF=$WORK/stylegan2-ada-pytorch
if [ -d "$REF_SRC" ]; then
  cp -r "$REF_SRC" "$REF"
  $PY - "$REF" <<'EOF'
import pathlib, sys
ref = pathlib.Path(sys.argv[1])
misc = ref / "torch_utils" / "misc.py"
misc.write_text(misc.read_text().replace("super().__init__(dataset)", "super().__init__()"))
ops = ref / "torch_utils" / "custom_ops.py"
src = ops.read_text()
for call in ("torch.utils.cpp_extension.load(name=module_name, build_directory",
             "torch.utils.cpp_extension.load(name=module_name, verbose"):
    src = src.replace(call, "module = " + call)
src = src.replace("        module = importlib.import_module(module_name)\n", "")
ops.write_text(src)
(ref / "requests.py").exists() or (ref / "requests.py").write_text("")  # dnnlib imports it
print("patched", ref)
EOF
  if [ $SMOKE = 0 ]; then  # build the fused ops once, outside the timed stages
    stage build_ops 120 $PY -c "import sys; sys.path.insert(0, '$REF')
from torch_utils.ops import bias_act, upfirdn2d
print('bias_act', bias_act._init(), 'upfirdn2d', upfirdn2d._init())"
  fi
else
  echo "no $REF_SRC: the reference stages are skipped (place it with the fetch tool)" | tee "$OUT/reference_missing.txt"
fi

# 3. robustrep's full StyleGAN2 step against stylegan2-ada's networks and loss, same weights
if [ -d "$REF" ]; then
  stage step_vs_reference 150 $PY scripts/gpu_compare_step.py --ref "$REF" --device $DEV \
    --res $RES --batch $BATCH --iters $ITERS --warmup 1 $NET --out "$OUT/step_vs_reference.json"
fi

# 4. sec/kimg: robustrep gan train against stylegan2-ada's train.py on the same PNG folder
DATA=$WORK/pngs
$PY - "$DATA" $RES <<'EOF'
import pathlib, sys
import numpy as np
from PIL import Image
folder, res = pathlib.Path(sys.argv[1]), int(sys.argv[2])
folder.mkdir(parents=True)
rng = np.random.default_rng(0)
for i in range(256):
    Image.fromarray(rng.integers(0, 256, (res, res, 3), dtype=np.uint8)).save(folder / f"{i:05d}.png")
EOF
stage gan_train_fp32 60 $PY scripts/gpu_bench_programs.py gan --device $DEV --data "$DATA" \
  --res $RES --batch $BATCH --steps $STEPS $GAN_NET
if [ $SMOKE = 0 ]; then
  stage gan_train_bf16 60 $PY scripts/gpu_bench_programs.py gan --device $DEV --data "$DATA" \
    --res $RES --batch $BATCH --steps $STEPS --amp bf16 --fp16-res 0
  [ -d "$REF" ] && stage reference_train 100 bash -c "cd '$REF' && $PY train.py --outdir '$WORK/ref_runs' \
    --data '$DATA' --cfg paper256 --batch 32 --aug noaug --metrics none --kimg 12 --snap 1000 --gpus 1"
fi

# 5. the classifier against a bare loop of the same model on one batch already on the device
stage classify 60 $PY scripts/gpu_bench_programs.py classify --device $DEV --model $CLS_MODEL \
  --batch $CLS_BATCH --steps 40
[ $SMOKE = 0 ] && stage classify_bf16_cl 40 $PY scripts/gpu_bench_programs.py classify --device $DEV \
  --model $CLS_MODEL --batch $CLS_BATCH --steps 40 --amp bf16 --channels-last

# 6. torch.profiler: the top kernels of one robustrep step (amortised phases)
stage profile 60 $PY scripts/bench_stylegan2_step.py --device $DEV --res $RES --batch $BATCH \
  --iters 1 --warmup 1 --profile $( [ $SMOKE = 1 ] && echo "--channel-base 256 --channel-max 32" \
  || echo "--channel-base 16384 --channel-max 512 --fp16-res 4" )

# 7. --compile: the same StyleGAN2 step eager and compiled (G's training forward and D; the
#    penalties stay eager), fp32, then compiled with bf16 autocast and fp16 blocks; each run
#    prints its first (compiling) round apart from the timed ones
BENCH_NET=$( [ $SMOKE = 1 ] && echo "--channel-base 256 --channel-max 32" \
  || echo "--channel-base 16384 --channel-max 512" )
BENCH="$PY scripts/bench_stylegan2_step.py --device $DEV --res $RES --batch $BATCH"
BENCH="$BENCH --iters $ITERS --warmup 1 $BENCH_NET"
if [ $SMOKE = 1 ]; then
  stage step_compile 60 bash -c "$BENCH --fp16-res 0 --out '$OUT/step_eager.json' && \
    $BENCH --fp16-res 0 --compile --out '$OUT/step_compiled.json'"
else
  stage step_compile 150 bash -c "$BENCH --fp16-res 0 --out '$OUT/step_eager.json' && \
    $BENCH --fp16-res 0 --compile --out '$OUT/step_compiled.json' && \
    $BENCH --fp16-res 4 --amp bf16 --compile --out '$OUT/step_compiled_bf16.json'"
fi

# 8. the GPU tests (smoke: collection only); last, so the figures come first
if [ $SMOKE = 1 ]; then
  stage pytest_gpu 60 $PY -m pytest -q -m gpu --collect-only -p no:cacheprovider
else
  stage pytest_gpu 100 $PY -m pytest -q -m gpu -p no:cacheprovider -x
fi

rm -rf "$WORK"
echo "figures in $OUT"
