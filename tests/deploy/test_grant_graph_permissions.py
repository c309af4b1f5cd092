"""infra/grant-graph-permissions.sh against a stand-in `az` that plays Microsoft Graph.

The stand-in answers the three calls the script makes (the Graph service principal's id, an app
role id looked up by value, the identity's app role assignments) from a JSON state file, records
every call, and adds an assignment when the script POSTs one. No network, no Azure.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import INFRA

SCRIPT = INFRA / "grant-graph-permissions.sh"
PRINCIPAL = "11111111-2222-3333-4444-555555555555"
GRAPH_SP = "99999999-0000-0000-0000-000000000000"
# Stand-in app role ids: the script must take whatever the tenant's Graph service principal says.
ROLES = {
    "User.Invite.All": "aaaaaaaa-0000-0000-0000-000000000001",
    "GroupMember.ReadWrite.All": "aaaaaaaa-0000-0000-0000-000000000002",
    "Directory.ReadWrite.All": "aaaaaaaa-0000-0000-0000-000000000003",
    "User.Read.All": "aaaaaaaa-0000-0000-0000-000000000004",
}
WANTED = ["User.Invite.All", "GroupMember.ReadWrite.All", "User.Read.All"]

FAKE_AZ = textwrap.dedent(
    """\
    import json, os, re, sys
    state_path = os.environ["FAKE_AZ_STATE"]
    state = json.load(open(state_path))
    args = sys.argv[1:]
    state["calls"].append(args)
    def opt(name):
        return args[args.index(name) + 1] if name in args else None
    out = ""
    if args[:3] == ["ad", "sp", "show"]:
        query = opt("--query")
        if query == "id":
            out = state["graph_sp"]
        else:
            value = re.search(r"value=='([^']+)'", query).group(1)
            out = state["roles"].get(value, "")
    elif args[0] == "rest" and opt("--method") == "get":
        assert opt("--uri").endswith(f"/servicePrincipals/{state['principal']}/appRoleAssignments")
        assert state["graph_sp"] in opt("--query")
        out = "\\n".join(state["granted"])
    elif args[0] == "rest" and opt("--method") == "post":
        body = json.loads(opt("--body"))
        assert body["principalId"] == state["principal"] and body["resourceId"] == state["graph_sp"]
        state["granted"].append(body["appRoleId"])
    else:
        sys.exit(f"fake az: unexpected call {args}")
    json.dump(state, open(state_path, "w"))
    if out:
        print(out)
    """
)


@pytest.fixture
def fake_az(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "fake_az.py").write_text(FAKE_AZ, encoding="utf-8")
    az = bin_dir / "az"
    az.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{bin_dir / "fake_az.py"}" "$@"\n', encoding="utf-8")
    az.chmod(0o755)
    state = tmp_path / "state.json"

    def run(*args: str, granted: list[str] = ()):
        state.write_text(
            json.dumps({"graph_sp": GRAPH_SP, "roles": ROLES, "principal": PRINCIPAL, "granted": list(granted), "calls": []}),
            encoding="utf-8",
        )
        env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "FAKE_AZ_STATE": str(state)}
        result = subprocess.run(["bash", str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=60, check=False)
        return result, json.loads(state.read_text(encoding="utf-8"))

    return run


def posts(state: dict) -> list[list[str]]:
    return [call for call in state["calls"] if call[:1] == ["rest"] and "post" in call]


def test_it_grants_exactly_the_three_permissions(fake_az):
    result, state = fake_az(PRINCIPAL)
    assert result.returncode == 0, result.stderr
    assert sorted(state["granted"]) == sorted(ROLES[p] for p in WANTED)
    assert len(posts(state)) == 3


def test_it_is_idempotent(fake_az):
    result, state = fake_az(PRINCIPAL, granted=[ROLES["User.Invite.All"]])
    assert result.returncode == 0, result.stderr
    assert len(posts(state)) == 2
    assert sorted(state["granted"]) == sorted(ROLES[p] for p in WANTED)


def test_check_changes_nothing_and_fails_while_a_permission_is_missing(fake_az):
    result, state = fake_az(PRINCIPAL, "--check", granted=[ROLES["User.Invite.All"]])
    assert result.returncode == 1
    assert "GroupMember.ReadWrite.All" in result.stderr and "MISSING" in result.stderr
    assert posts(state) == []

    result, _ = fake_az(PRINCIPAL, "--check", granted=[ROLES[p] for p in WANTED])
    assert result.returncode == 0, result.stderr


def test_a_broader_graph_permission_is_reported(fake_az):
    result, state = fake_az(PRINCIPAL, granted=[ROLES["Directory.ReadWrite.All"]])
    assert result.returncode == 0, result.stderr
    assert "WARNING" in result.stderr and ROLES["Directory.ReadWrite.All"] in result.stderr


@pytest.mark.parametrize("argument", ["", "my-function-app", "11111111-2222-3333-4444"])
def test_the_principal_must_be_an_object_id(fake_az, argument):
    result, state = fake_az(*([argument] if argument else []))
    assert result.returncode == 2
    assert state["calls"] == []
