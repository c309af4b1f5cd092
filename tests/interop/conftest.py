"""Real processes for the interop tests: Azurite (in memory) and the b2b-signup binary.

The app trusts a mock Entra ID (mock_entra.py, a thread of pytest's) for the admin API's
tokens. Both processes run on 127.0.0.1 only, on ports the OS picks, with their output in log files (never in
a pipe nobody reads: a full pipe would freeze them). Every wait is bounded. Teardown stops
both process groups, SIGTERM to pytest still runs teardown, and the children are killed by
the kernel if pytest itself is killed, so a failing or interrupted run leaves nothing behind.

Settings (environment):
    B2B_SIGNUP_BIN          the binary to test (default: target/debug/b2b-signup, or
                            $CARGO_TARGET_DIR/debug/b2b-signup)
    B2B_INTEROP_ALLOW_SKIP  "1": skip the tests that need the binary when it is missing,
                            instead of failing them
    AZURITE_BIN             Azurite to run (default: node_modules/.bin/azurite, see package.json)
"""

from __future__ import annotations

import ctypes
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
from mock_entra import MockEntra

REPO_ROOT = Path(__file__).resolve().parents[2]
INTEROP_DIR = Path(__file__).resolve().parent
POLICY_PATH = INTEROP_DIR / "policy.json"

# Azurite's well-known development account (public, documented by Microsoft).
DEV_ACCOUNT = "devstoreaccount1"
DEV_ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)

# Azurite prints one such line per service once it accepts connections, e.g.
#   Azurite Table service is successfully listening at http://127.0.0.1:43865
AZURITE_LISTENING = re.compile(
    r"^Azurite (?P<service>Blob|Queue|Table) service is successfully listening at "
    r"http://127\.0\.0\.1:(?P<port>\d+)$"
)
AZURITE_START_TIMEOUT_S = 30  # about 0.8 s on an idle 2-core machine; generous for a busy one
APP_START_TIMEOUT_S = 10
STOP_TIMEOUT_S = 5

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>

# SIGTERM (a CI timeout, `kill`) would end pytest without running fixture teardown, leaving
# Azurite and the app running; as KeyboardInterrupt, pytest tears everything down first.
if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
    signal.signal(signal.SIGTERM, signal.default_int_handler)

# Local addresses must never go through a proxy, whatever the developer's shell has set.
for _name in ("NO_PROXY", "no_proxy"):
    os.environ[_name] = ",".join(filter(None, [os.environ.get(_name), "127.0.0.1", "localhost"]))


@dataclass(frozen=True)
class Azurite:
    blob_port: int
    queue_port: int
    table_port: int
    log_path: Path

    @property
    def connection_string(self) -> str:
        base = f"http://127.0.0.1:{{}}/{DEV_ACCOUNT}"
        return (
            f"DefaultEndpointsProtocol=http;AccountName={DEV_ACCOUNT};AccountKey={DEV_ACCOUNT_KEY};"
            f"BlobEndpoint={base.format(self.blob_port)};"
            f"QueueEndpoint={base.format(self.queue_port)};"
            f"TableEndpoint={base.format(self.table_port)};"
        )


@dataclass(frozen=True)
class SignupApp:
    base_url: str
    log_path: Path


# --- process helpers -------------------------------------------------------------------------


_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform == "linux" else None


def _die_with_parent() -> None:
    """In the child, before exec: get SIGKILL if pytest dies without tearing down (Linux)."""
    _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def start_process(args: list[str], log_path: Path, **popen_kwargs) -> subprocess.Popen:
    """Start `args` in its own process group, stdout and stderr appended to `log_path`."""
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
            **popen_kwargs,
        )


def stop_process(process: subprocess.Popen) -> None:
    """SIGTERM the process group we started, then SIGKILL it if it lingers."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            pass
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
            return
        except subprocess.TimeoutExpired:
            continue


def log_tail(path: Path, lines: int = 60) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:]) or "(empty log)"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_azurite_ports(process: subprocess.Popen, log_path: Path) -> dict[str, int]:
    """Read Azurite's log until all three services say they are listening."""
    deadline = time.monotonic() + AZURITE_START_TIMEOUT_S
    while time.monotonic() < deadline:
        ports = {
            m["service"]: int(m["port"])
            for line in log_path.read_text(encoding="utf-8", errors="replace").splitlines()
            if (m := AZURITE_LISTENING.match(line.strip()))
        }
        if len(ports) == 3:
            return ports
        if process.poll() is not None:
            pytest.fail(
                f"Azurite exited with code {process.returncode} before listening:\n"
                f"{log_tail(log_path)}",
                pytrace=False,
            )
        time.sleep(0.05)
    pytest.fail(
        f"Azurite did not listen within {AZURITE_START_TIMEOUT_S} s:\n{log_tail(log_path)}",
        pytrace=False,
    )


def wait_for_http_answer(process: subprocess.Popen, url: str, log_path: Path) -> None:
    """Poll `url` like the Functions host does: any HTTP answer, whatever its status, is ready."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    deadline = time.monotonic() + APP_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(
                f"b2b-signup exited with code {process.returncode} before answering {url}:\n"
                f"{log_tail(log_path)}",
                pytrace=False,
            )
        try:
            opener.open(url, timeout=1).close()
            return
        except urllib.error.HTTPError:
            return
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            time.sleep(0.1)
    pytest.fail(
        f"b2b-signup did not answer GET {url} within {APP_START_TIMEOUT_S} s:\n{log_tail(log_path)}",
        pytrace=False,
    )


def signup_binary() -> Path:
    if explicit := os.environ.get("B2B_SIGNUP_BIN"):
        return Path(explicit).resolve()
    target_dir = Path(os.environ.get("CARGO_TARGET_DIR", "target"))
    return (REPO_ROOT / target_dir / "debug" / "b2b-signup").resolve()


def funchost_binary() -> Path:
    """The local Functions host (crates/funchost), built beside the handler."""
    if explicit := os.environ.get("B2B_FUNCHOST_BIN"):
        return Path(explicit).resolve()
    return signup_binary().parent / "funchost"


def host_json_arguments() -> list[str]:
    """The arguments the Functions host would pass: host.json customHandler.description.arguments."""
    try:
        host = json.loads((REPO_ROOT / "host.json").read_text(encoding="utf-8"))
        arguments = host["customHandler"]["description"].get("arguments", [])
    except (FileNotFoundError, KeyError, TypeError, AttributeError, json.JSONDecodeError):
        return []
    return [str(a) for a in arguments] if isinstance(arguments, list) else []


def app_environment(azurite: Azurite, port: int) -> dict[str, str]:
    """The developer's environment, minus anything that could point the app elsewhere."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("AzureWebJobs", "SIGNUP_", "FUNCTIONS_", "AZURE_", "GRAPH_"))
    }
    env.update(
        {
            "FUNCTIONS_CUSTOMHANDLER_PORT": str(port),
            "AzureWebJobsStorage": azurite.connection_string,
            "SIGNUP_POLICY_PATH": str(POLICY_PATH),
            "SIGNUP_DRY_RUN": "true",
            "RUST_LOG": "info",
            "NO_COLOR": "1",  # plain log files for the failure reports
        }
    )
    return env


# --- fixtures --------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def azurite(tmp_path_factory) -> Azurite:
    """One in-memory Azurite for the whole run, on OS-chosen loopback ports."""
    binary = Path(os.environ.get("AZURITE_BIN", REPO_ROOT / "node_modules" / ".bin" / "azurite"))
    if not binary.exists():
        pytest.fail(f"{binary} is missing: run `npm ci` in {REPO_ROOT}", pytrace=False)

    workdir = tmp_path_factory.mktemp("azurite")
    log_path = workdir / "azurite.log"
    process = start_process(
        [
            str(binary),
            "--inMemoryPersistence",  # cannot be combined with --location
            "--disableTelemetry",  # never let it call out (telemetry, cloud metadata probe)
            "--extentMemoryLimit", "256",  # MB; the default is half the machine's memory
            "--blobHost", "127.0.0.1", "--blobPort", "0",
            "--queueHost", "127.0.0.1", "--queuePort", "0",
            "--tableHost", "127.0.0.1", "--tablePort", "0",
        ],
        log_path,
        cwd=workdir,
    )  # fmt: skip
    try:
        ports = wait_for_azurite_ports(process, log_path)
        yield Azurite(ports["Blob"], ports["Queue"], ports["Table"], log_path)
    finally:
        stop_process(process)


@pytest.fixture(scope="session")
def entra() -> MockEntra:
    """A mock Entra ID tenant on loopback whose tokens the app's admin API accepts."""
    mock = MockEntra()
    try:
        yield mock
    finally:
        mock.stop()


@pytest.fixture(scope="module")
def signup_app(azurite, entra, tmp_path_factory) -> SignupApp:
    """The b2b-signup binary as the Functions host runs it, against the Azurite above."""
    binary = signup_binary()
    if not (binary.is_file() and os.access(binary, os.X_OK)):
        message = (
            f"b2b-signup binary not found at {binary}: run `cargo build` or set B2B_SIGNUP_BIN"
        )
        if os.environ.get("B2B_INTEROP_ALLOW_SKIP") == "1":
            pytest.skip(f"{message} (skipped because B2B_INTEROP_ALLOW_SKIP=1)")
        pytest.fail(f"{message} (set B2B_INTEROP_ALLOW_SKIP=1 to skip instead)", pytrace=False)

    port = free_port()
    log_path = tmp_path_factory.mktemp("b2b-signup") / "b2b-signup.log"
    process = start_process(
        [str(binary), *host_json_arguments()],
        log_path,
        cwd=REPO_ROOT,  # the host runs the handler in the app root
        env={**app_environment(azurite, port), **entra.settings()},
    )
    try:
        base_url = f"http://127.0.0.1:{port}"
        wait_for_http_answer(process, f"{base_url}/", log_path)
        yield SignupApp(base_url, log_path)
    finally:
        stop_process(process)


# --- reporting -------------------------------------------------------------------------------


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Attach the tail of each process log to a failing test's report."""
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for name in ("signup_app", "azurite"):
            fixture = item.funcargs.get(name) if hasattr(item, "funcargs") else None
            if fixture is not None:
                report.sections.append((f"{name} log ({fixture.log_path})", log_tail(fixture.log_path)))
