#!/usr/bin/env bash
# Sets up .venv (tools/setup_env.sh), then lints and runs the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup_env.sh
.venv/bin/ruff check .
.venv/bin/python -m pytest -q tests "$@"
