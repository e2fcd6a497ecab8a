#!/usr/bin/env bash
# Creates .venv/ in the checkout and installs everything fastreid-dmf needs.
# Idempotent: a second run only re-checks. See README "Installation" for why
# fastreid is installed with --no-deps.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
VENV="$ROOT/.venv"
STAMP="$VENV/.fastreid_dmf_installed"

PY=${PYTHON:-}
if [ -z "$PY" ]; then
  for cand in python3.11 python3; do
    if command -v "$cand" >/dev/null 2>&1; then PY=$cand; break; fi
  done
fi
"$PY" -c 'import sys; assert sys.version_info[:2] >= (3, 10), sys.version' || {
  echo "setup_env.sh: need Python >= 3.10, got $("$PY" --version 2>&1)" >&2; exit 1; }

if [ -f "$STAMP" ] && cmp -s "$STAMP" requirements.txt; then
  "$VENV/bin/pip" install -q --no-deps --no-build-isolation -e . >/dev/null
  echo "setup_env.sh: .venv is up to date"
  exit 0
fi

[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
PIP="$VENV/bin/pip"
"$PIP" install -q --upgrade pip setuptools wheel
"$PIP" install -q -r requirements.txt

# faiss: the GPU build where a wheel exists (it falls back to CPU search when the
# machine has no GPU), else the CPU build.
"$PIP" install -q "faiss-gpu==1.15.1" || "$PIP" install -q "faiss-cpu==1.15.1"

# fastreid 1.4.0 pins torch==1.13.1 / torchvision==0.14.1, which have no
# Python 3.11 wheels: install it without its pins (its real needs are in
# requirements.txt).
"$PIP" install -q --no-deps "fastreid==1.4.0"

# Build fast-reid's Cython ranker now, so ReidEvaluator never tries to compile
# inside site-packages at run time.
CYLIB=$("$VENV/bin/python" -c 'import importlib.util, os; s = importlib.util.find_spec("fastreid"); print(os.path.join(os.path.dirname(s.origin), "evaluation", "rank_cylib"))')
(cd "$CYLIB" && PATH="$VENV/bin:$PATH" "$VENV/bin/python" setup.py -q build_ext --inplace >/dev/null && rm -rf build)

"$PIP" install -q --no-deps --no-build-isolation -e .
cp requirements.txt "$STAMP"
echo "setup_env.sh: installed into $VENV"
