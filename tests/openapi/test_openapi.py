"""docs/openapi.yaml against the running app (the local host runner and the real handler, on
an in-memory Azurite, dry run).

1. Each documented answer that generated data cannot reach (303 for HTML forms, 200 and 409
   of the admin API, 401, 403, 413, 415) is produced on purpose and validated against the
   spec with schemathesis's response validation.
2. schemathesis then generates requests for every operation from the spec (positive data,
   a bounded number of examples, a fixed seed), as an administrator with both app roles of
   the mock Entra ID tenant, and checks status codes, content types, headers and bodies
   against it, and that the admin API refuses a request without a valid token.

Run from the repository root:
    "$(scripts/python-env.sh tests/openapi/requirements.txt)" -m pytest tests/openapi -q
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import requests
import schemathesis

SPEC_PATH = Path(__file__).resolve().parents[2] / "docs" / "openapi.yaml"
SCHEMA = schemathesis.openapi.from_path(str(SPEC_PATH))
CONFIG_PATH = Path(__file__).with_name("schemathesis.toml")
BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
# Examples per operation for the generated run: enough to cover each field and content type,
# small enough that the whole file takes seconds.
MAX_EXAMPLES = 30
CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
        "ignored_auth",
    ]
)


def operation(path: str, method: str = "POST"):
    return SCHEMA[path][method]


def post(portal, path: str, **kwargs) -> requests.Response:
    kwargs.setdefault("timeout", 10)
    kwargs.setdefault("allow_redirects", False)
    return requests.post(f"{portal.base_url}{path}", **kwargs)


def get(portal, path: str, **kwargs) -> requests.Response:
    kwargs.setdefault("timeout", 10)
    return requests.get(f"{portal.base_url}{path}", **kwargs)


def key(portal) -> dict[str, str]:
    """An administrator's token with both roles."""
    return {"authorization": f"Bearer {portal.token}"}


def reader(portal) -> dict[str, str]:
    """A token with `Signup.Read` only: reads, never decides."""
    token = portal.entra.token("reader@contoso.com", "7b2e0a5c-3d4e-4f60-8a12-23456789abcd", ["Signup.Read"])
    return {"authorization": f"Bearer {token}"}


def sign_up(portal, email: str) -> dict:
    response = post(portal, "/api/signup", json={"email": email, "displayName": "Test Person"})
    operation("/api/signup").validate_response(response)
    assert response.status_code == 202, response.text
    return response.json()


def test_sign_up_answers_match_the_spec(portal):
    signup = operation("/api/signup")
    cases = [
        ("invited", {"json": {"email": "ada@contoso.com", "displayName": "Ada"}}, 202),
        ("waits for approval", {"data": {"email": "bob@fabrikam.com", "displayName": "Bob"}}, 202),
        ("invalid address", {"json": {"email": "not an address", "displayName": "A"}}, 400),
        ("wrong type", {"json": {"email": 5, "displayName": "A"}}, 400),
        ("refused domain", {"json": {"email": "eve@gmail.com", "displayName": "Eve"}}, 403),
        ("access not allowed", {"json": {"email": "c@fabrikam.com", "displayName": "C", "access": "sales-extranet"}}, 403),
        ("too large", {"json": {"email": "a@contoso.com", "displayName": "A", "justification": "x" * 17_000}}, 413),
        ("wrong content type", {"data": "email=a", "headers": {"content-type": "text/plain"}}, 415),
    ]
    for description, kwargs, status in cases:
        response = post(portal, "/api/signup", **kwargs)
        assert response.status_code == status, f"{description}: {response.status_code} {response.text}"
        signup.validate_response(response)


def test_html_form_posts_get_a_303_as_documented(portal):
    signup = operation("/api/signup")
    for body, location in [
        ("email=ada%40contoso.com&displayName=Ada&lang=fr", "/fr/thanks.html?id="),
        ("email=eve%40gmail.com&displayName=Eve", "/error.html?code=domain_not_allowed&field=email"),
    ]:
        response = post(
            portal,
            "/api/signup",
            data=body,
            headers={"content-type": "application/x-www-form-urlencoded", "accept": BROWSER_ACCEPT},
        )
        assert response.status_code == 303, response.text
        assert response.headers["location"].startswith(location), response.headers["location"]
        signup.validate_response(response)


def test_admin_answers_match_the_spec(portal):
    approve = operation("/api/requests/{id}/approve")
    deny = operation("/api/requests/{id}/deny")
    retry = operation("/api/requests/{id}/retry")
    pending = sign_up(portal, "grace@fabrikam.com")
    invited = sign_up(portal, "linus@contoso.com")
    assert pending["status"] == "pending_approval"
    path = "/api/requests/{}/{}"

    cases = [
        (approve, path.format(pending["requestId"], "approve"), {"headers": key(portal), "json": {"reason": "known partner"}}, 200),
        (approve, path.format(pending["requestId"], "approve"), {"headers": key(portal)}, 200),  # again: changed false
        (deny, path.format(pending["requestId"], "deny"), {"headers": key(portal), "json": {"reason": "no"}}, 409),  # already_decided
        (deny, path.format(invited["requestId"], "deny"), {"headers": key(portal), "json": {"reason": "no"}}, 409),  # not_pending
        (deny, path.format(invited["requestId"], "deny"), {"headers": key(portal)}, 400),  # a denial needs a reason
        (retry, path.format(invited["requestId"], "retry"), {"headers": key(portal)}, 409),  # not_failed
        (approve, path.format("01J0000000000000000000000Z", "approve"), {"headers": key(portal)}, 404),
        (approve, path.format(pending["requestId"], "approve"), {"headers": key(portal), "json": {"why": 1}}, 400),
        (approve, path.format(pending["requestId"], "approve"), {"headers": {**key(portal), "content-type": "text/plain"}, "data": "x"}, 415),
        (approve, path.format(pending["requestId"], "approve"), {"headers": key(portal), "data": "reason=" + "x" * 5000}, 413),
        (approve, path.format(pending["requestId"], "approve"), {}, 401),
        (approve, path.format(pending["requestId"], "approve"), {"headers": {"authorization": "Bearer not-a-token"}}, 401),
        # A function key authorises nothing now.
        (deny, path.format(pending["requestId"], "deny"), {"headers": {"x-functions-key": "any"}}, 401),
        (deny, path.format(pending["requestId"], "deny"), {"headers": reader(portal)}, 403),
    ]
    for op, url, kwargs, status in cases:
        response = post(portal, url, **kwargs)
        assert response.status_code == status, f"{url} {kwargs}: {response.status_code} {response.text}"
        op.validate_response(response)
        if status == 200:
            assert response.json()["status"] == "Queued" or response.json()["changed"] is False
        if status == 401:
            assert response.headers["www-authenticate"] == "Bearer"


def test_admin_reads_match_the_spec(portal):
    listing = operation("/api/requests", "GET")
    one = operation("/api/requests/{id}", "GET")
    pending = sign_up(portal, "ada.reads@fabrikam.com")
    url = f"/api/requests/{pending['requestId']}"

    cases = [
        (listing, "/api/requests", {"headers": reader(portal), "params": {"status": "PendingApproval", "limit": 1}}, 200),
        (listing, "/api/requests", {"headers": key(portal), "params": {"limit": 0}}, 400),
        (listing, "/api/requests", {}, 401),
        (listing, "/api/requests", {"headers": {"authorization": f"Bearer {portal.entra.token('norole@contoso.com', '8c3f1b6d-4e5f-4071-9b23-3456789abcde', [])}"}}, 403),
        (one, url, {"headers": reader(portal)}, 200),
        (one, "/api/requests/01J0000000000000000000000Z", {"headers": key(portal)}, 404),
        (one, url, {}, 401),
    ]
    for op, path, kwargs, status in cases:
        response = get(portal, path, **kwargs)
        assert response.status_code == status, f"{path} {kwargs}: {response.status_code} {response.text}"
        op.validate_response(response)

    page = get(portal, "/api/requests", headers=key(portal), params={"limit": 1}).json()
    assert len(page["items"]) == 1 and page["continuation"], page
    shown = get(portal, url, headers=key(portal)).json()
    assert [(e["actor"], e["action"]) for e in shown["history"]] == [("partner", "created")]


def test_generated_requests_conform_to_the_spec(portal, tmp_path):
    """schemathesis's own run over every operation: positive data, bounded, reproducible."""
    pending = sign_up(portal, "generated.decisions@fabrikam.com")
    cli = Path(sys.executable).with_name("schemathesis")
    command = [
        str(cli),
        "--config-file", str(CONFIG_PATH),
        "run",
        str(SPEC_PATH),
        "--url", portal.base_url,
        "--header", f"Authorization: Bearer {portal.token}",
        "--mode", "positive",
        "--max-examples", str(MAX_EXAMPLES),
        "--seed", "20260108",
        "--checks", CHECKS,
        "--phases", "examples,coverage,fuzzing",
        "--workers", "1",
        "--request-timeout", "10",
        "--max-redirects", "0",
        "--report", "junit",
        "--report-dir", str(tmp_path),
    ]  # fmt: skip
    env = {**os.environ, "NO_COLOR": "1", "B2B_PENDING_REQUEST_ID": pending["requestId"]}
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    # Every operation was tested, none skipped for a schema it could not use.
    assert re.search(r"Tested:\s+9\b", output), output  # with POST /api/verify and the two subjects calls
    assert not re.search(r"(?<![0-9])0 passed", output), output  # "310 passed" is fine


def test_the_spec_names_every_problem_code_of_the_handler():
    problem_rs = (SPEC_PATH.parents[1] / "src" / "problem.rs").read_text(encoding="utf-8")
    in_source = set(re.findall(r'Self::\w+ => "([a-z_]+)",', problem_rs))
    documented = set(SCHEMA.raw_schema["components"]["schemas"]["Problem"]["properties"]["code"]["enum"])
    assert "invalid_email" in in_source
    assert in_source == documented
