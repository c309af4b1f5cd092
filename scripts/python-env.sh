#!/usr/bin/env bash
# python-env.sh — create (or reuse) a Python virtualenv for a test suite's pinned requirements.
#
# Usage (run it, don't source it):
#     PY="$(scripts/python-env.sh)"        # stdout carries exactly one line: the venv's python
#     "$PY" -m pytest tests/interop
#
#     PY="$(scripts/python-env.sh tests/deploy/requirements.txt)"
#     "$PY" -m pytest tests/deploy
#
# What it does:
#   - REQUIREMENTS (optional argument, relative to the repository root or absolute) names the
#     pinned requirements file; the default is tests/interop/requirements.txt.
#   - The venv lives at the repository root (gitignored): .venv for the default requirements,
#     .venv-<folder of the requirements file> for any other (tests/deploy -> .venv-deploy), so
#     suites with different pins never rebuild each other's venv. B2B_VENV_DIR overrides.
#     The base interpreter is $PYTHON, else python3.
#   - It installs the requirements (exact pins) quietly from the configured package index.
#   - It is idempotent: <venv>/.requirements.sha256 holds a hash of the requirements file and
#     the interpreter version, written after the last successful install. When it matches,
#     nothing is installed and the script returns at once. When it differs (requirements
#     edited, interpreter changed, an earlier install interrupted) the venv is rebuilt from
#     scratch, so packages dropped from the requirements do not linger.
#   - Progress and pip output go to stderr; stdout is only the python path, for $(...).
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
default_requirements="$repo_root/tests/interop/requirements.txt"
requirements="${1:-$default_requirements}"
[[ "$requirements" == /* ]] || requirements="$repo_root/$requirements"
if [[ "$requirements" == "$default_requirements" ]]; then
    default_venv="$repo_root/.venv"
else
    default_venv="$repo_root/.venv-$(basename "$(dirname "$requirements")")"
fi
venv_dir="${B2B_VENV_DIR:-$default_venv}"
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
