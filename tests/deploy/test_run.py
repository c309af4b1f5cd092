"""scripts/run as a newcomer meets it (issue 15, items 11 and 12): a port already taken stops it
before anything starts, naming the process that holds it; Azurite on other ports moves the
app's storage with it, so a second portal keeps its sign-ups in its own Azurite.

Every port here is chosen by the OS (never 7071 or 10000-10002, where a developer's portal may
run). scripts/run builds with cargo: set CARGO_TARGET_DIR to a built target directory (the one
`cargo build --workspace --bins` used) and the build is a no-op. Each run is its own process
group, stopped whole (scripts/run, Azurite, funchost, the handler) even when a test fails.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from conftest import REPO_ROOT

RUN = REPO_ROOT / "scripts" / "run"
AZURITE = REPO_ROOT / "scripts" / "azurite.sh"
PORTS = REPO_ROOT / "scripts" / "ports.sh"
PORT_SETTINGS = ("PORT", "AZURITE_BLOB_PORT", "AZURITE_QUEUE_PORT", "AZURITE_TABLE_PORT")
# scripts/run refuses a taken port before it builds or installs anything.
REFUSAL_SECONDS = 30
# Up to the portal answering: a no-op build, Azurite, funchost and the handler starting (a stale
# target directory makes it a real build).
START_SECONDS = 600


def free_ports(count: int) -> list[int]:
    """`count` distinct loopback ports the OS reports free (held together while chosen)."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]


def target_dir() -> Path:
    path = Path(os.environ.get("CARGO_TARGET_DIR", REPO_ROOT / "target"))
    return path if path.is_absolute() else REPO_ROOT / path


@contextlib.contextmanager
def running(env: dict[str, str], output: Path, base: dict[str, str] | None = None):
    """scripts/run with `env` over `base` (default: this environment), in a process group of its
    own, its output in `output`; on leaving, the whole group is stopped: SIGTERM (scripts/run
    stops its children), then SIGKILL for what is left."""
    with output.open("wb") as sink:
        process = subprocess.Popen(
            ["bash", str(RUN)],
            cwd=REPO_ROOT,
            env={**(os.environ if base is None else base), **env},
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield process
    finally:
        stop_group(process)


def stop_group(process: subprocess.Popen) -> None:
    group = process.pid
    for sig, grace in ((signal.SIGTERM, 15.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(group, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=0.1)
            try:
                os.killpg(group, 0)
            except ProcessLookupError:
                return
    process.wait(timeout=5)


def http(method: str, url: str, body: dict | None = None) -> tuple[int, bytes]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        request.add_header("content-type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


@pytest.mark.parametrize("taken", PORT_SETTINGS)
def test_a_taken_port_stops_scripts_run_before_anything_starts(tmp_path, taken):
    """Item 12: a second scripts/run printed a key and "portal on", then died on "Address already
    in use"; now it names the port and the process holding it, and starts nothing."""
    ports = dict(zip(PORT_SETTINGS, map(str, free_ports(len(PORT_SETTINGS)))))
    output = tmp_path / "run.log"
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", int(ports[taken])))
        holder.listen()
        started = time.monotonic()
        with running({**ports, "AZURITE_LOCATION": str(tmp_path / "azurite")}, output) as process:
            process.wait(timeout=REFUSAL_SECONDS)
        elapsed = time.monotonic() - started
    text = output.read_text(errors="replace")

    assert process.returncode != 0, text
    assert f"port {ports[taken]} " in text and f"taken by pid {os.getpid()}:" in text, text
    assert "function key" not in text, "no key is printed for a portal that does not start"
    assert "portal on" not in text, text
    assert elapsed < REFUSAL_SECONDS
    assert not (tmp_path / "azurite").exists(), "Azurite did not start"


def test_ports_sh_names_the_holder_from_proc_when_ss_cannot_tell():
    """The fallback when `ss` is missing: /proc/net/tcp and /proc/*/fd."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        found = subprocess.run(
            ["bash", "-c", f'source "{PORTS}"; holder_from_proc {port}'],
            capture_output=True, text=True, timeout=30, check=True,
        )
    assert found.stdout.strip() == str(os.getpid())


def test_azurite_s_connection_string_names_the_ports_it_runs_on():
    """Item 11: UseDevelopmentStorage=true always means 10000-10002."""
    default = subprocess.run(
        ["bash", str(AZURITE), "--connection-string"],
        env={k: v for k, v in os.environ.items() if not k.startswith("AZURITE_")},
        capture_output=True, text=True, timeout=30, check=True,
    )
    assert default.stdout.strip() == "UseDevelopmentStorage=true"

    blob, queue, table = free_ports(3)
    moved = subprocess.run(
        ["bash", str(AZURITE), "--connection-string"],
        env={**os.environ, "AZURITE_BLOB_PORT": str(blob), "AZURITE_QUEUE_PORT": str(queue),
             "AZURITE_TABLE_PORT": str(table)},
        capture_output=True, text=True, timeout=30, check=True,
    )
    setting = dict(part.split("=", 1) for part in moved.stdout.strip().rstrip(";").split(";"))
    assert setting["BlobEndpoint"] == f"http://127.0.0.1:{blob}/devstoreaccount1"
    assert setting["QueueEndpoint"] == f"http://127.0.0.1:{queue}/devstoreaccount1"
    assert setting["TableEndpoint"] == f"http://127.0.0.1:{table}/devstoreaccount1"
    assert setting["AccountName"] == "devstoreaccount1"


def test_a_portal_on_other_ports_keeps_its_sign_ups_in_its_own_azurite(tmp_path):
    """Item 11, end to end: a portal on other ports; its sign-up is in the Azurite on those ports."""
    ports = dict(zip(PORT_SETTINGS, map(str, free_ports(len(PORT_SETTINGS)))))
    env = {
        **ports,
        "AZURITE_LOCATION": str(tmp_path / "azurite"),
        "CARGO_TARGET_DIR": str(target_dir()),
        "SIGNUP_POLICY_PATH": "policy.example.json",
        "SIGNUP_DRY_RUN": "true",
    }
    env_without_storage = {k: v for k, v in os.environ.items() if k != "AzureWebJobsStorage"}
    portal = f"http://127.0.0.1:{ports['PORT']}"
    output = tmp_path / "run.log"
    with running(env, output, base=env_without_storage) as process:
        deadline = time.monotonic() + START_SECONDS
        while True:
            assert process.poll() is None, f"scripts/run stopped:\n{output.read_text(errors='replace')}"
            with contextlib.suppress(OSError):
                if http("GET", f"{portal}/")[0] == 200:
                    break
            assert time.monotonic() < deadline, output.read_text(errors="replace")
            time.sleep(0.5)

        status, body = http("POST", f"{portal}/api/signup",
                            {"email": "ada@contoso.com", "displayName": "Ada Lovelace"})
        assert status == 202, (status, body, output.read_text(errors="replace"))
        request_id = json.loads(body)["requestId"]

        storage = subprocess.run(
            ["bash", str(AZURITE), "--connection-string"],
            env={**os.environ, **ports}, capture_output=True, text=True, timeout=30, check=True,
        ).stdout.strip()
        listed = subprocess.run(
            [str(target_dir() / "debug" / "b2b-signup"), "requests", "list", "--json"],
            cwd=REPO_ROOT, env={**env_without_storage, "AzureWebJobsStorage": storage},
            capture_output=True, text=True, timeout=60,
        )
        assert listed.returncode == 0, listed.stderr
        assert request_id in listed.stdout, "the sign-up is in this portal's Azurite"
