#!/usr/bin/env bash
# python-env.sh — create (or reuse) the Python virtualenv for the tests in tests/interop.
#
# Usage (run it, don't source it):
#     PY="$(scripts/python-env.sh)"        # stdout carries exactly one line: the venv's python
#     "$PY" -m pytest tests/interop
#
# What it does:
#   - The venv lives in .venv at the repository root (gitignored); B2B_VENV_DIR overrides.
#     The base interpreter is $PYTHON, else python3.
#   - It installs tests/interop/requirements.txt (exact pins) quietly from the configured
#     package index; B2B_REQUIREMENTS names another file (the OpenAPI tests use
#     B2B_VENV_DIR=.venv-openapi B2B_REQUIREMENTS=tests/openapi/requirements.txt).
#   - It is idempotent: .venv/.requirements.sha256 holds a hash of the requirements file and
#     the interpreter version, written after the last successful install. When it matches,
#     nothing is installed and the script returns at once. When it differs (requirements
#     edited, interpreter changed, an earlier install interrupted) the venv is rebuilt from
#     scratch, so packages dropped from the requirements do not linger.
#   - Progress and pip output go to stderr; stdout is only the python path, for $(...).
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv_dir="${B2B_VENV_DIR:-$repo_root/.venv}"
requirements="${B2B_REQUIREMENTS:-$repo_root/tests/interop/requirements.txt}"
base_python="${PYTHON:-python3}"
stamp="$venv_dir/.requirements.sha256"
venv_python="$venv_dir/bin/python"

log() { printf 'python-env: %s\n' "$*" >&2; }

command -v "$base_python" >/dev/null || { log "no '$base_python' on PATH (set PYTHON=...)"; exit 1; }
[[ -f "$requirements" ]] || { log "missing $requirements"; exit 1; }

# What the venv must have been built from: the requirements and the interpreter that runs it.
wanted="$(
    {
        cat "$requirements"
        "$base_python" -c 'import sys; print(sys.version)'
    } | sha256sum | cut -d' ' -f1
)"

if [[ -x "$venv_python" && -f "$stamp" && "$(cat "$stamp")" == "$wanted" ]]; then
    echo "$venv_python"
    exit 0
fi

log "building $venv_dir from $requirements ..."
"$base_python" -m venv --clear "$venv_dir"
"$venv_python" -m pip install --quiet --disable-pip-version-check --no-input \
    -r "$requirements" >&2
echo "$wanted" >"$stamp"
log "ready"

echo "$venv_python"
