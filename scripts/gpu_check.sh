#!/usr/bin/env bash
# One-command GPU check for a lent GPU session (issue 22 item 1); at most ~8 minutes of wall time.
#
#   bash scripts/gpu_check.sh               # on the GPU machine, from the checkout's root
#   bash scripts/gpu_check.sh --cpu-smoke   # the same stages at toy sizes on the CPU
#
# Carried with the checkout (ignored paths, see .gitignore; scripts/gpu_prepare.sh fills them):
#   .gpu_carry/stylegan2-ada-pytorch/   NVlabs/stylegan2-ada-pytorch (fetch tool); never committed
#   .gpu_carry/wheels/*.whl             optional: wheels of packages the GPU machine lacks
# Environment:
#   BUDGET_S    the whole script stops within this many seconds (default 470, under 8 min)
#   STAGES      the stages to run, space-separated (default: all, in the order below); a second
#               call on a still-warm machine runs the ones the first skipped
#   RETURN_DIR  after every stage, summary.txt (every stage's output) and gpu_check_out.tgz (every
#               file) are rewritten here: on the device machine pass RETURN_DIR=$OUT, so what was
#               measured comes back even if the call is killed (the tool returns at most 8 files)
# Every stage writes its own file under $CHECK_OUT (default ./gpu_check_out), so a stage killed at
# its limit loses only itself: each stage gets its own limit or what is left of the budget,
# whichever is less, and a stage that would get under 20 s is skipped (named in its file). The
# stages run in the order of what the issue's "done when" needs most. Each file starts with the
# GPU name, torch, CUDA and cuDNN versions and the TF32 flags. The stylegan2-ada copy is patched in
# a scratch folder for torch >= 2.11: InfiniteSampler calls super().__init__() without the
# dataset, and custom_ops uses the module that torch.utils.cpp_extension.load returns instead of
# importlib.import_module.
set -u
SMOKE=0
[ "${1:-}" = "--cpu-smoke" ] && SMOKE=1
ROOT=$(pwd)
CHECK_OUT=${CHECK_OUT:-$ROOT/gpu_check_out}
RETURN_DIR=${RETURN_DIR:-}
WORK=$(mktemp -d)
PY=${PYTHON:-python3}
[ -x "$ROOT/.venv/bin/python" ] && PY=${PYTHON:-$ROOT/.venv/bin/python}
REF_SRC=$ROOT/.gpu_carry/stylegan2-ada-pytorch
ALL_STAGES="step_vs_reference gan_train_fp32 gan_train_mixed reference_train regularizers
  classify classify_bf16_cl gan_train_bf16 profile step_compile reference_train_fp32 pytest_gpu"
STAGES=" $(echo ${STAGES:-$ALL_STAGES}) "
mkdir -p "$CHECK_OUT"
# the fused ops are built once per machine: a second call on a warm machine reuses them
export PYTHONUNBUFFERED=1 TORCH_EXTENSIONS_DIR=${TORCH_EXTENSIONS_DIR:-/tmp/robustrep_gpu_ext}
export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0}

START=$(date +%s)
BUDGET_S=${BUDGET_S:-470}
SCALE=1  # the smoke run gets longer limits: a shared CPU is slow, the point there is the logic
if [ $SMOKE = 1 ]; then
  SCALE=5; BUDGET_S=${SMOKE_BUDGET_S:-1800}; DEV=cpu; RES=32; BATCH=4; STEPS=12; ITERS=1
  CLS_MODEL=resnet10t; CLS_BATCH=8
  NET="--channel-base 256 --channel-max 32 --z-dim 32 --w-dim 32 --mapping-layers 2 --mbstd 4"
  GAN_NET="--channel-base 256 --channel-max 32 --z-dim 32 --w-dim 32 --mapping-layers 2 --mbstd-group 4"
  BENCH_NET="--channel-base 256 --channel-max 32"
  REGS_FLAGS="--batch 4 --rounds 1 --steps 1 --warmup 0 --views 1 2 --rp-width 4 --fid-samples 200 --fid-dim 16"
else
  DEV=cuda; RES=256; BATCH=32; STEPS=40; ITERS=5; CLS_MODEL=wrn28_10; CLS_BATCH=128
  NET=""; GAN_NET=""; BENCH_NET="--channel-base 16384 --channel-max 512"  # paper256's networks
  REGS_FLAGS="--rounds 3 --steps 3 --views 1 8 48"
fi

header() {  # the machine line every output file starts with
  $PY - <<'EOF'
import torch
name = torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU (no CUDA)"
print(f"# {name}; torch {torch.__version__}; CUDA {torch.version.cuda}; "
      f"cuDNN {torch.backends.cudnn.version()}; TF32 conv "
      f"{torch.backends.cudnn.allow_tf32}, matmul {torch.backends.cuda.matmul.allow_tf32}")
EOF
}

send_back() {  # summary.txt and one archive of every file, rewritten after every stage
  [ -n "$RETURN_DIR" ] || return 0
  mkdir -p "$RETURN_DIR"
  for f in "$CHECK_OUT"/*.txt; do [ -e "$f" ] && { echo "=== $(basename "$f")"; cat "$f"; }; done \
    > "$RETURN_DIR/summary.txt.part" && mv "$RETURN_DIR/summary.txt.part" "$RETURN_DIR/summary.txt"
  tar -C "$(dirname "$CHECK_OUT")" -czf "$RETURN_DIR/gpu_check_out.tgz.part" \
    "$(basename "$CHECK_OUT")" && mv "$RETURN_DIR/gpu_check_out.tgz.part" "$RETURN_DIR/gpu_check_out.tgz"
}

wanted() { [[ "$STAGES" == *" $1 "* ]]; }

stage() {  # stage NAME LIMIT_S COMMAND...: output to $CHECK_OUT/NAME.txt, never through a pipe
  local name=$1 limit=$(( $2 * SCALE )); shift 2
  wanted "$name" || [ "$name" = build_ops ] || return 0
  local file=$CHECK_OUT/$name.txt
  local left=$(( START + BUDGET_S - $(date +%s) ))
  if [ $left -lt 20 ]; then
    echo "# skipped: ${left} s of the ${BUDGET_S} s budget left (run STAGES=\"$name ...\")" > "$file"
    echo "[$name] skipped (budget) -> $file"
    send_back
    return
  fi
  [ $left -lt $limit ] && limit=$left
  echo "$HEADER" > "$file"
  echo "# \$ $*" >> "$file"
  local start=$(date +%s)
  timeout --kill-after=10 "$limit" "$@" >> "$file" 2>&1
  local rc=$?
  echo "# rc $rc, $(( $(date +%s) - start )) s (limit $limit s)" >> "$file"
  echo "[$name] rc $rc ($(( $(date +%s) - start )) s) -> $file"
  send_back
}

# 1. install what is carried (the GPU machine has torch, timm, pytest; not robustrep)
if ! $PY -c "import robustrep.tasks" 2>/dev/null; then
  if ls "$ROOT"/.gpu_carry/wheels/*.whl >/dev/null 2>&1; then
    $PY -m pip install --no-index --no-deps "$ROOT"/.gpu_carry/wheels/*.whl > "$CHECK_OUT/install.txt" 2>&1
  fi
  $PY -m pip install --no-index --no-deps --no-build-isolation -e "$ROOT" >> "$CHECK_OUT/install.txt" 2>&1
  $PY -c "import robustrep.tasks" >> "$CHECK_OUT/install.txt" 2>&1 || echo "robustrep does not import: $CHECK_OUT/install.txt"
fi

HEADER=$(header 2>&1)  # once: importing torch for every stage would cost seconds each

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
  if [ $SMOKE = 0 ] && { wanted step_vs_reference || wanted reference_train || wanted reference_train_fp32; }; then
    # the fused ops, built outside the timed stages
    stage build_ops 120 $PY -c "import sys; sys.path.insert(0, '$REF')
from torch_utils.ops import bias_act, upfirdn2d
print('bias_act', bias_act._init(), 'upfirdn2d', upfirdn2d._init())"
  fi
else
  echo "no $REF_SRC: the reference stages are skipped (place it with the fetch tool)" | tee "$CHECK_OUT/reference_missing.txt"
fi

# 3. robustrep's full StyleGAN2 step against stylegan2-ada's networks and loss, same weights, in
#    one process: fp32, then mixed (the reference's fp16 blocks against ours and against bf16)
[ -d "$REF" ] && stage step_vs_reference 150 $PY scripts/gpu_compare_step.py --ref "$REF" \
  --device $DEV --res $RES --batch $BATCH --iters $ITERS --warmup 1 $NET \
  --out "$CHECK_OUT/step_vs_reference.json"

# 4. sec/kimg: robustrep gan train (fp32, then the preset's fp16 blocks) against stylegan2-ada's
#    train.py (mixed, its default) on the same PNG folder; TF32 convolutions on both sides (torch's
#    default, which robustrep keeps; the reference turns it off unless --allow-tf32)
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
GAN="$PY scripts/gpu_bench_programs.py gan --device $DEV --data $DATA --res $RES --batch $BATCH --steps $STEPS $GAN_NET"
stage gan_train_fp32 60 $GAN --fp16-res 0
stage gan_train_mixed 60 $GAN
REF_TRAIN="cd '$REF' && $PY train.py --outdir '$WORK/ref_runs' --data '$DATA' --cfg paper256 \
  --batch 32 --aug noaug --metrics none --kimg 8 --snap 1000 --gpus 1 --allow-tf32 true"
[ -d "$REF" ] && [ $SMOKE = 0 ] && stage reference_train 90 bash -c "$REF_TRAIN"

# 5. each regularizer's D step over the baseline (DCGAN, 32x32, batch 64), then AdaptiveMix in
#    the StyleGAN2 step at the preset's size and precision, both measured in one run
BENCH="$PY scripts/bench_stylegan2_step.py --device $DEV --res $RES --batch $BATCH --warmup 1 $BENCH_NET"
stage regularizers 90 bash -c "$PY scripts/bench_regularizers.py --device $DEV $REGS_FLAGS \
  --out '$CHECK_OUT/bench_regularizers.json' && $BENCH --iters 3 --fp16-res $([ $SMOKE = 1 ] \
  && echo 0 || echo 4) --reg none,adaptivemix --out '$CHECK_OUT/step_adaptivemix.json'"

# 6. the classifier against a bare loop of the same model on one batch already on the device
CLS="$PY scripts/gpu_bench_programs.py classify --device $DEV --model $CLS_MODEL --batch $CLS_BATCH --steps 40"
stage classify 60 $CLS
[ $SMOKE = 0 ] && stage classify_bf16_cl 40 $CLS --amp bf16 --channels-last

# 7. bf16 autocast in the GAN program (the preset's fp16 blocks off)
[ $SMOKE = 0 ] && stage gan_train_bf16 60 $GAN --amp bf16 --fp16-res 0

# 8. torch.profiler: the top kernels of one robustrep step (amortised phases)
stage profile 60 $BENCH --iters 1 --profile --fp16-res $([ $SMOKE = 1 ] && echo 0 || echo 4)

# 9. --compile: the same StyleGAN2 step eager and compiled (G's training forward and D; the
#    penalties stay eager), fp32, then compiled with bf16 autocast and fp16 blocks; each run
#    prints its first (compiling) round apart from the timed ones
COMPILE="$BENCH --iters $ITERS"
if [ $SMOKE = 1 ]; then
  stage step_compile 60 bash -c "$COMPILE --fp16-res 0 --out '$CHECK_OUT/step_eager.json' && \
    $COMPILE --fp16-res 0 --compile --out '$CHECK_OUT/step_compiled.json'"
else
  stage step_compile 150 bash -c "$COMPILE --fp16-res 0 --out '$CHECK_OUT/step_eager.json' && \
    $COMPILE --fp16-res 0 --compile --out '$CHECK_OUT/step_compiled.json' && \
    $COMPILE --fp16-res 4 --amp bf16 --compile --out '$CHECK_OUT/step_compiled_bf16.json'"
fi

# 10. the reference's train.py in fp32 (--fp32 true), against gan_train_fp32
[ -d "$REF" ] && [ $SMOKE = 0 ] && stage reference_train_fp32 90 bash -c "$REF_TRAIN --fp32 true"

# 11. the GPU tests (smoke: collection only); last, so the figures come first
if [ $SMOKE = 1 ]; then
  stage pytest_gpu 60 $PY -m pytest -q -m gpu --collect-only -p no:cacheprovider
else
  stage pytest_gpu 100 $PY -m pytest -q -m gpu -p no:cacheprovider -x
fi

# the key lines last, where the device tool's reply shows them
echo "=== digest"
head -1 "$CHECK_OUT/step_vs_reference.txt" 2>/dev/null
grep -h "s/kimg\|ops: " "$CHECK_OUT/step_vs_reference.txt" 2>/dev/null
for f in gan_train_fp32 gan_train_mixed gan_train_bf16 classify classify_bf16_cl; do
  [ -f "$CHECK_OUT/$f.txt" ] && echo "$f: $(grep -h '^{' "$CHECK_OUT/$f.txt" | tail -1)"
done
for f in reference_train reference_train_fp32; do
  [ -f "$CHECK_OUT/$f.txt" ] && echo "$f: $(grep -h 'sec/kimg' "$CHECK_OUT/$f.txt" | tail -2 | tr -s ' ')"
done
grep -h "baseline\|adaptivemix\|reg none\|amortised" "$CHECK_OUT/regularizers.txt" 2>/dev/null \
  | grep -v "^#" | head -12
grep -h "amortised\|first round" "$CHECK_OUT/step_compile.txt" 2>/dev/null
grep -h "skipped\|^# rc [^0]" "$CHECK_OUT"/*.txt 2>/dev/null
rm -rf "$WORK"
echo "figures in $CHECK_OUT${RETURN_DIR:+ (and $RETURN_DIR/summary.txt, gpu_check_out.tgz)}"
