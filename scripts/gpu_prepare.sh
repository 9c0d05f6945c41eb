#!/usr/bin/env bash
# Fill .gpu_carry/ (git-ignored) with what scripts/gpu_check.sh needs on the lent GPU machine and
# that machine lacks, and print the one call that runs the check there.
#
#   bash scripts/gpu_prepare.sh REFERENCE
#
# REFERENCE: a git repository of NVlabs/stylegan2-ada-pytorch (a clone, or the bare copy the fetch
# tool leaves, e.g. /work/.mirror/NVlabs+stylegan2-ada-pytorch/repo). Its files at HEAD, without
# docs/, go to .gpu_carry/stylegan2-ada-pytorch. The GPU machine (Python 3.12, torch, timm,
# scipy, sklearn, ...; /work/.library/device/KINDS.md) lacks pytorch-ood, which `import robustrep`
# needs: its wheel goes to .gpu_carry/wheels (pure Python, so any Python version takes it).
# AutoAttack (pyautoattack, 42 MB) is left out: no stage of the check runs classify eval.
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: bash scripts/gpu_prepare.sh REFERENCE_GIT_REPO" >&2; exit 2; }
ref=$1
git --git-dir="$ref" rev-parse --verify -q HEAD >/dev/null 2>&1 \
  || git -C "$ref" rev-parse --verify -q HEAD >/dev/null 2>&1 \
  || { echo "$ref: not a git repository of stylegan2-ada-pytorch" >&2; exit 2; }
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] && PY=${PYTHON:-.venv/bin/python}
rm -rf .gpu_carry/stylegan2-ada-pytorch .gpu_carry/wheels
mkdir -p .gpu_carry/stylegan2-ada-pytorch .gpu_carry/wheels
{ git --git-dir="$ref" archive HEAD 2>/dev/null || git -C "$ref" archive HEAD; } \
  | tar -x -C .gpu_carry/stylegan2-ada-pytorch --exclude=docs
[ -f .gpu_carry/stylegan2-ada-pytorch/train.py ] \
  || { echo "$ref: no train.py at HEAD; is it stylegan2-ada-pytorch?" >&2; exit 2; }
ood=$($PY -c "import importlib.metadata as m; print(m.version('pytorch-ood'))")
$PY -m pip download --quiet --no-deps --only-binary=:all: -d .gpu_carry/wheels "pytorch-ood==$ood"
echo "prepared .gpu_carry ($(du -sh .gpu_carry | cut -f1); the call carries at most 64 MiB):"
ls .gpu_carry .gpu_carry/wheels
cat <<'EOF'
run it with the device tool, one call (about 9 minutes; the stages stop within BUDGET_S):
  carry: [".gpu_carry"]
  timeout_s: 580
  command: RETURN_DIR=$OUT BUDGET_S=520 bash scripts/gpu_check.sh
then, if the machine is still warm, the stages the first call skipped (named in summary.txt):
  command: RETURN_DIR=$OUT BUDGET_S=200 STAGES="NAME NAME ..." bash scripts/gpu_check.sh
EOF
