#!/usr/bin/env bash
# Sets up June on a fresh Debian machine: a uv-managed venv in .venv with every extra.
#   bash scripts/setup.sh            # Python environment only
#   bash scripts/setup.sh --system   # also Debian packages, the Docker engine and the sandbox image (root)
# llama-cpp-python builds from source the first time (about 10 minutes on 2 cores); uv caches the wheel.
set -euo pipefail
cd "$(dirname "$0")/.."

system=0
for arg in "$@"; do
  case "$arg" in
    --system) system=1 ;;
    *) echo "usage: $0 [--system]" >&2; exit 2 ;;
  esac
done

if [ "$system" = 1 ]; then
  bash scripts/setup-system.sh
fi

# uv from PyPI; `python3 -m uv` works even where pip's script folder is not on PATH.
if command -v uv >/dev/null 2>&1; then
  uv=(uv)
else
  python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install --quiet uv
  uv=(python3 -m uv)
fi

# Debian's python3.11 has the shared libpython that Triton's python backend stub links against.
python=/usr/bin/python3.11
[ -x "$python" ] || python=python3.11
export CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}"
"${uv[@]}" sync --locked --all-extras --python "$python"

# EvalPlus's harness, the reference for HumanEval+/MBPP+ agreement tests and benchmarks.
if ! .venv-evalplus/bin/python -c "import evalplus.evaluate" >/dev/null 2>&1; then
  "${uv[@]}" venv -q --allow-existing .venv-evalplus --python "$python"
  "${uv[@]}" pip install -q --python .venv-evalplus/bin/python -r scripts/evalplus-requirements.txt
  "${uv[@]}" pip install -q --python .venv-evalplus/bin/python --no-deps evalplus==0.3.1
fi
echo "June is installed in .venv (run: .venv/bin/june --help)"
