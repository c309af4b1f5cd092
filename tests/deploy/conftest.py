"""Shared fixtures for the deploy tests: the parsed Bicep files and the built release package.

Settings (environment):
    B2B_DEPLOY_DIST   a directory that scripts/package already wrote (it holds app/ and
                      b2b-signup.zip): the package tests check it instead of packaging again.
                      Tests that must run scripts/package themselves then need the release
                      binary in the target directory, and are skipped without it.
    CARGO_TARGET_DIR  where cargo builds (default: target/ at the repository root).

Without B2B_DEPLOY_DIST the session runs `scripts/package --out <tmp> <policy>` once. That is a
release build for x86_64-unknown-linux-musl: a no-op when the binary is up to date, about four
minutes on a cold target directory (2 cores).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from pycep import BicepParser

REPO_ROOT = Path(__file__).resolve().parents[2]
INFRA = REPO_ROOT / "infra"
PACKAGE_SCRIPT = REPO_ROOT / "scripts" / "package"
MUSL_TARGET = "x86_64-unknown-linux-musl"
# A top-level folder with a function.json is a function (the same rule as scripts/package and
# tests/interop/test_schemas.py), except tool and build folders.
NOT_FUNCTION_FOLDERS = {"node_modules", "target", "dist"}
# The budget for one scripts/package run: a cold release build takes about four minutes.
PACKAGE_TIMEOUT_SECONDS = 1200


def function_folders(root: Path = REPO_ROOT) -> list[str]:
    return sorted(
        path.parent.name
        for path in root.glob("*/function.json")
        if path.parent.name not in NOT_FUNCTION_FOLDERS and not path.parent.name.startswith(".")
    )


def release_binary() -> Path:
    target_dir = Path(os.environ.get("CARGO_TARGET_DIR", REPO_ROOT / "target"))
    if not target_dir.is_absolute():
        target_dir = REPO_ROOT / target_dir
    return target_dir / MUSL_TARGET / "release" / "b2b-signup"


def run_package(*args: str, cwd: Path = REPO_ROOT, script: Path = PACKAGE_SCRIPT, env: dict | None = None):
    """Run scripts/package with `args`; output captured, bounded in time."""
    return subprocess.run(
        ["bash", str(script), *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=PACKAGE_TIMEOUT_SECONDS,
        check=False,
    )


# --- Bicep -------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def bicep_files() -> list[Path]:
    files = sorted(INFRA.rglob("*.bicep"))
    assert files, "no Bicep files under infra/"
    return files


@pytest.fixture(scope="session")
def parsed(bicep_files) -> dict[str, dict]:
    """Every infra/**/*.bicep parsed with pycep, keyed by its path relative to infra/."""
    parser = BicepParser()
    return {path.relative_to(INFRA).as_posix(): parser.parse(file_path=path) for path in bicep_files}


# --- the package -------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def policy_file(tmp_path_factory) -> Path:
    """A valid policy to package: the repository's example, copied so nothing reads it in place."""
    path = tmp_path_factory.mktemp("policy") / "policy.json"
    shutil.copyfile(REPO_ROOT / "policy.example.json", path)
    return path


@pytest.fixture(scope="session")
def dist(tmp_path_factory, policy_file) -> Path:
    """A package directory: $B2B_DEPLOY_DIST, or one this session builds with scripts/package."""
    given = os.environ.get("B2B_DEPLOY_DIST")
    if given:
        path = Path(given).resolve()
        assert (path / "app").is_dir() and (path / "b2b-signup.zip").is_file(), (
            f"B2B_DEPLOY_DIST={given} does not hold app/ and b2b-signup.zip"
        )
        return path
    out = tmp_path_factory.mktemp("dist")
    result = run_package("--out", str(out), str(policy_file))
    assert result.returncode == 0, f"scripts/package failed:\n{result.stdout}\n{result.stderr}"
    return out


@pytest.fixture
def built_binary(dist) -> Path:
    """The release binary in the target directory, for tests that run scripts/package --skip-build
    (after `dist`, which builds it unless B2B_DEPLOY_DIST names a package made elsewhere)."""
    binary = release_binary()
    if not os.access(binary, os.X_OK):
        if os.environ.get("B2B_DEPLOY_DIST"):
            pytest.skip(f"B2B_DEPLOY_DIST is set and there is no release binary at {binary}")
        pytest.fail(f"no release binary at {binary} (the dist fixture should have built it)")
    return binary
