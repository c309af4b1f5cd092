"""The running app for the OpenAPI contract test: an in-memory Azurite, a mock Entra ID, and
the local host runner, which starts the real handler binary as Azure's host does.

The process helpers and the Azurite and mock Entra ID fixtures are tests/interop's
(conftest.py and mock_entra.py), loaded from there (one way to start processes for every
Python test). The runner gets an app root of its own in a temporary folder (host.json and
the function folders, no local.settings.json from the developer), the policy of the interop
tests, SIGNUP_DRY_RUN=true, and the settings that make its admin API trust the mock tenant.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

_INTEROP = Path(__file__).resolve().parents[1] / "interop" / "conftest.py"
# The interop conftest imports mock_entra from its own folder.
sys.path.insert(0, str(_INTEROP.parent))
_spec = importlib.util.spec_from_file_location("b2b_interop_conftest", _INTEROP)
interop = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = interop  # dataclasses look their module up there
_spec.loader.exec_module(interop)

# The session's Azurite (in memory, loopback, OS-chosen ports, telemetry off), and the mock
# Entra ID tenant (a thread on loopback).
azurite = interop.azurite
entra = interop.entra
mock_entra = sys.modules["mock_entra"]

REPO_ROOT = interop.REPO_ROOT
# Who the tests' tokens name.
ADMIN = ("alice@contoso.com", "5f0c8e3a-1b2c-4d5e-8f90-0123456789ab")
LISTENING = re.compile(r"^funchost listening on (http://127\.0\.0\.1:\d+)$")
RUNNER_START_TIMEOUT_S = 30


@dataclass(frozen=True)
class Portal:
    base_url: str
    log_path: Path
    # The mock tenant, for tokens with other roles than `token`'s.
    entra: object
    # An administrator's access token with both roles: every admin operation is allowed.
    token: str


def _app_root(root: Path) -> None:
    root.mkdir(parents=True)
    shutil.copy(REPO_ROOT / "host.json", root / "host.json")
    for function_json in REPO_ROOT.glob("*/function.json"):
        (root / function_json.parent.name).mkdir()
        shutil.copy(function_json, root / function_json.parent.name / "function.json")


@pytest.fixture(scope="session")
def portal(azurite, entra, tmp_path_factory) -> Portal:
    binary = interop.signup_binary()
    funchost = interop.funchost_binary()
    for built in (binary, funchost):
        if not built.is_file():
            pytest.fail(f"{built} is missing: run `cargo build --workspace --bins`", pytrace=False)
    workdir = tmp_path_factory.mktemp("portal")
    root = workdir / "app"
    _app_root(root)
    log_path = workdir / "runner.log"
    env = interop.app_environment(azurite, 0)
    env.pop("FUNCTIONS_CUSTOMHANDLER_PORT")  # the runner picks the handler's port
    env.update(entra.settings())
    process = interop.start_process(
        [str(funchost), "--port", "0", "--app-root", str(root), "--handler", str(binary)],
        log_path,
        cwd=workdir,
        env=env,
    )
    try:
        deadline = time.monotonic() + RUNNER_START_TIMEOUT_S
        while True:
            found = [
                m[1]
                for line in log_path.read_text(encoding="utf-8", errors="replace").splitlines()
                if (m := LISTENING.match(line.strip()))
            ]
            if found:
                break
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the host runner did not start:\n{interop.log_tail(log_path)}", pytrace=False)
            time.sleep(0.05)
        token = entra.token(*ADMIN, [mock_entra.READ, mock_entra.APPROVE])
        yield Portal(found[0], log_path, entra, token)
    finally:
        interop.stop_process(process)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Attach the runner's log to a failing test's report."""
    outcome = yield
    report = outcome.get_result()
    fixture = getattr(item, "funcargs", {}).get("portal")
    if report.failed and fixture is not None:
        report.sections.append((f"runner log ({fixture.log_path})", interop.log_tail(fixture.log_path)))
