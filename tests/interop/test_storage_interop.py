"""What b2b-signup stores must be readable by Microsoft's own SDKs.

The Functions host (queue trigger) and administrators' tools (portal, Storage Explorer,
scripts) never see our Rust types: they see table entities and queue messages. These tests
post sign-ups to the real binary, running against Azurite with the policy in policy.json,
then read the results back with azure-data-tables and azure-storage-queue.

Each test uses its own addresses, so the tests do not depend on each other's order.
"""

from __future__ import annotations

import base64
import json
import re
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime, timezone

import pytest
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode
from azure.storage.queue import QueueClient
from mock_entra import APPROVE

TABLE_NAME = "SignupRequests"
QUEUE_NAME = "signup-requests"
# azure-storage-queue 12.18 defaults to API version 2026-10-06; Azurite 3.37.0 accepts up to
# 2026-06-06. Pinning the client keeps Azurite strict (no --skipApiVersionCheck), so an
# unsupported version sent by the app itself would still be caught.
QUEUE_API_VERSION = "2026-06-06"
SDK_TIMEOUTS = {"connection_timeout": 5, "read_timeout": 10, "retry_total": 1}
# Crockford base32, 26 characters, first one at most 7 (48-bit timestamp).
ULID = re.compile(r"^[0-7][0-9A-HJKMNP-TV-Z]{25}$")


# --- HTTP helpers ----------------------------------------------------------------------------


@dataclass
class Response:
    status: int
    content_type: str
    body: bytes = field(repr=False)

    def json(self):
        return json.loads(self.body)

    def __str__(self) -> str:
        return f"HTTP {self.status} ({self.content_type}): {self.body[:500]!r}"


def post(app, path: str, body: bytes, content_type: str, headers: dict | None = None) -> Response:
    request = urllib.request.Request(
        app.base_url + path,
        data=body,
        method="POST",
        headers={"Content-Type": content_type, **(headers or {})},
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=10) as answer:
            return Response(answer.status, answer.headers.get("Content-Type", ""), answer.read())
    except urllib.error.HTTPError as error:  # 4xx/5xx still carry the answer we test
        with error:
            return Response(error.code, error.headers.get("Content-Type", ""), error.read())


def post_json(app, payload: dict) -> Response:
    return post(app, "/api/signup", json.dumps(payload).encode(), "application/json")


def post_form(app, fields: dict) -> Response:
    return post(
        app,
        "/api/signup",
        urllib.parse.urlencode(fields).encode(),
        "application/x-www-form-urlencoded",
    )


def accepted_request_id(response: Response, expected_status: str) -> str:
    """Assert a 202 sign-up answer and return its request id."""
    assert response.status == 202, str(response)
    body = response.json()
    assert body.get("status") == expected_status, body
    request_id = body.get("requestId", "")
    assert ULID.match(request_id), f"requestId is not a ULID: {request_id!r}"
    return request_id


# --- storage helpers -------------------------------------------------------------------------


def read_row(table: TableClient, domain: str, request_id: str):
    try:
        return table.get_entity(partition_key=domain, row_key=request_id)
    except ResourceNotFoundError:
        pytest.fail(f"no {TABLE_NAME} row with PartitionKey={domain!r} RowKey={request_id!r}")


def rows_for_email(table: TableClient, domain: str, email: str) -> list:
    # Address claims share the table; their RowKeys start with "address:", after every ULID.
    rows = table.query_entities(
        "PartitionKey eq @pk and RowKey lt 'address:'", parameters={"pk": domain}
    )
    return [row for row in rows if str(row.get("Email", "")).lower() == email.lower()]


def take_messages(queue: QueueClient) -> list[dict]:
    """Receive, delete and decode every visible message: base64 text holding JSON.

    The Functions host reads queue messages as base64 (host.json messageEncoding default);
    anything else would go straight to the poison queue.
    """
    messages = []
    for _ in range(100):  # bounded: the tests enqueue a handful at most
        batch = list(
            queue.receive_messages(messages_per_page=32, max_messages=32, visibility_timeout=60)
        )
        if not batch:
            return messages
        for message in batch:
            raw = base64.b64decode(message.content, validate=True)
            messages.append(json.loads(raw))
            queue.delete_message(message)
    pytest.fail("the queue never ran dry")


def messages_about(messages: list[dict], request_id: str) -> list[dict]:
    return [m for m in messages if m.get("requestId") == request_id]


def as_datetime(value) -> datetime:
    """A timestamp property: Edm.DateTime (datetime) or ISO-8601 text with an offset."""
    if isinstance(value, datetime):
        parsed = value
    else:
        assert isinstance(value, str) and value, f"not a timestamp: {value!r}"
        parsed = datetime.fromisoformat(value)
    assert parsed.tzinfo is not None, f"timestamp without time zone: {value!r}"
    return parsed


# --- fixtures --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def requests_table(azurite) -> TableClient:
    table = TableClient.from_connection_string(
        azurite.connection_string, table_name=TABLE_NAME, **SDK_TIMEOUTS
    )
    # Created up front so these tests do not depend on who creates it (app or deployment).
    try:
        table.create_table()
    except ResourceExistsError:
        pass
    with table:
        yield table


@pytest.fixture(scope="module")
def signup_queue(azurite) -> QueueClient:
    queue = QueueClient.from_connection_string(
        azurite.connection_string, QUEUE_NAME, api_version=QUEUE_API_VERSION, **SDK_TIMEOUTS
    )
    try:
        queue.create_queue()
    except ResourceExistsError:
        pass
    with queue:
        yield queue


# --- tests -----------------------------------------------------------------------------------


def test_json_signup_is_stored_and_queued_in_formats_the_azure_sdks_read(
    signup_app, requests_table, signup_queue
):
    # Arrange
    payload = {
        "email": "Ada.Lovelace@CONTOSO.com",
        "displayName": "Ada Lovelace",
        "access": "sales-extranet",
        "company": 'Contoso, "Ltd" ü',
    }

    # Act
    response = post_json(signup_app, payload)

    # Assert: the answer
    request_id = accepted_request_id(response, "queued")

    # Assert: the row, as azure-data-tables reads it
    row = read_row(requests_table, "contoso.com", request_id)
    assert row["Email"] == "Ada.Lovelace@contoso.com"  # local part kept, domain lower-cased
    assert row["DisplayName"] == "Ada Lovelace"
    assert row["Access"] == "sales-extranet"
    assert row["Status"] == "Accepted"  # until a worker takes it
    assert row["Company"] == 'Contoso, "Ltd" ü'
    created_at, updated_at = as_datetime(row["CreatedAt"]), as_datetime(row["UpdatedAt"])
    assert updated_at >= created_at

    # Assert: the message, as azure-storage-queue (and so the Functions host) reads it
    message = {"v": 1, "requestId": request_id, "domain": "contoso.com"}
    assert messages_about(take_messages(signup_queue), request_id) == [message]


def test_repeat_signup_in_other_case_returns_the_same_request_and_queues_nothing(
    signup_app, requests_table, signup_queue
):
    # Arrange: a first sign-up, and its message taken off the queue
    first = post_json(
        signup_app, {"email": "Mary.Somerville@CONTOSO.com", "displayName": "Mary Somerville"}
    )
    request_id = accepted_request_id(first, "queued")
    assert len(messages_about(take_messages(signup_queue), request_id)) == 1

    # Act: the same address again, cased differently
    again = post_json(
        signup_app, {"email": "mary.somerville@Contoso.COM", "displayName": "Mary Somerville"}
    )

    # Assert: same request, one row, no second message
    assert accepted_request_id(again, "queued") == request_id
    assert len(rows_for_email(requests_table, "contoso.com", "mary.somerville@contoso.com")) == 1
    claim = requests_table.get_entity(
        partition_key="contoso.com", row_key="address:mary.somerville"
    )
    assert claim["RequestId"] == request_id
    assert messages_about(take_messages(signup_queue), request_id) == []


def test_form_post_for_an_approval_domain_waits_without_a_queue_message(
    signup_app, requests_table, signup_queue
):
    # Arrange: what a plain HTML <form method="post"> sends
    fields = {"email": "grace@fabrikam.com", "displayName": "Grace Hopper"}

    # Act
    response = post_form(signup_app, fields)

    # Assert
    request_id = accepted_request_id(response, "pending_approval")
    row = read_row(requests_table, "fabrikam.com", request_id)
    assert row["Status"] == "PendingApproval"
    assert row["Access"] == "partner-portal"  # the rule's first access option
    assert messages_about(take_messages(signup_queue), request_id) == []


def test_denied_domain_is_refused_with_problem_json(signup_app):
    # Arrange
    payload = {"email": "someone@gmail.com", "displayName": "Some One"}

    # Act
    response = post_json(signup_app, payload)

    # Assert
    assert response.status == 403, str(response)
    assert response.content_type.split(";")[0].strip() == "application/problem+json"
    problem = response.json()
    assert problem.get("code") == "domain_not_allowed", problem
    assert problem.get("status") == 403, problem


def test_history_and_decision_reason_read_back_as_json_and_text(
    signup_app, entra, requests_table, signup_queue
):
    # Arrange: a sign-up that waits for approval
    response = post_json(signup_app, {"email": "emmy@fabrikam.com", "displayName": "Emmy Noether"})
    request_id = accepted_request_id(response, "pending_approval")

    # Act: an administrator, signed in with Entra ID, approves it with a reason
    admin, admin_oid = "alice@contoso.com", "5f0c8e3a-1b2c-4d5e-8f90-0123456789ab"
    token = entra.token(admin, admin_oid, [APPROVE])
    decided = post(
        signup_app,
        f"/api/requests/{request_id}/approve",
        json.dumps({"reason": "Known partner"}).encode(),
        "application/json",
        {"Authorization": f"Bearer {token}"},
    )
    assert decided.status == 200, str(decided)

    # Assert: the decision's reason is a column of its own, and the history a JSON array of
    # {at, actor, action, from, to, reason} in the row, every value text or null
    row = read_row(requests_table, "fabrikam.com", request_id)
    assert row["DecisionReason"] == "Known partner"
    # Who decided is the token's person, never a key or a header the caller chose
    assert (row["DecidedBy"], row["DecidedById"]) == (admin, admin_oid)
    assert "Reason" not in row  # left to the worker's outcome
    assert isinstance(row["History"], str)
    history = json.loads(row["History"])
    assert [(e["actor"], e["action"], e["from"], e["to"]) for e in history] == [
        ("partner", "created", None, "PendingApproval"),
        (admin, "approved", "PendingApproval", "Accepted"),
        (admin, "queued", "Accepted", "Queued"),
    ]
    for entry in history:
        assert list(entry) == ["at", "actor", "action", "from", "to", "reason"]
        as_datetime(entry["at"])
    assert history[1]["reason"] == "Known partner"
    assert history[0]["reason"] is None
    assert as_datetime(history[1]["at"]) == as_datetime(row["DecidedAt"])
    assert "HistoryDropped" not in row  # written only once the bound drops entries
    assert len(messages_about(take_messages(signup_queue), request_id)) == 1


def test_a_data_subject_export_matches_the_rows_and_erasure_leaves_nothing_the_sdk_can_read(
    signup_app, entra, requests_table
):
    # Arrange: two requests of one address (the first failed, edited as an administrator
    # would with the SDK, with an access end written as Edm.DateTime), and another partner
    first = accepted_request_id(
        post_json(signup_app, {"email": "Lise@contoso.com", "displayName": "Lise Meitner"}), "queued"
    )
    row = read_row(requests_table, "contoso.com", first)
    row["Status"] = "Failed"
    row["AccessEndsAt"] = datetime(2027, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    requests_table.update_entity(row, mode=UpdateMode.REPLACE)
    second = accepted_request_id(
        post_json(signup_app, {"email": "lise@contoso.com", "displayName": "Lise Meitner"}), "queued"
    )
    other = accepted_request_id(
        post_json(signup_app, {"email": "otto@contoso.com", "displayName": "Otto Hahn"}), "queued"
    )
    token = entra.token("alice@contoso.com", "5f0c8e3a-1b2c-4d5e-8f90-0123456789ab", [APPROVE])
    admin = {"Authorization": f"Bearer {token}"}
    body = json.dumps({"email": "LISE@contoso.com"}).encode()

    # Act: export
    exported = post(signup_app, "/api/subjects/export", body, "application/json", admin)

    # Assert: what the SDK reads is what the export says
    assert exported.status == 200, str(exported)
    export = exported.json()
    assert [r["requestId"] for r in export["requests"]] == [first, second]
    for item in export["requests"]:
        stored = read_row(requests_table, "contoso.com", item["requestId"])
        assert item["email"] == stored["Email"]
        assert item["status"] == stored["Status"]
        assert item["history"] == json.loads(stored["History"])
    assert as_datetime(export["requests"][0]["accessEndsAt"]) == datetime(
        2027, 1, 2, 3, 4, 5, tzinfo=timezone.utc
    )
    claim = requests_table.get_entity(partition_key="contoso.com", row_key="address:lise")
    assert export["addressClaim"]["requestId"] == claim["RequestId"] == second
    assert other not in exported.body.decode()

    # Act: erase
    erased = post(signup_app, "/api/subjects/erase", body, "application/json", admin)

    # Assert: nothing of the address is left for the SDK; the other partner is untouched
    assert erased.status == 200, str(erased)
    assert erased.json()["requests"] == 2
    assert "lise" not in erased.body.decode().lower()
    assert rows_for_email(requests_table, "contoso.com", "lise@contoso.com") == []
    with pytest.raises(ResourceNotFoundError):
        requests_table.get_entity(partition_key="contoso.com", row_key="address:lise")
    assert read_row(requests_table, "contoso.com", other)["Email"] == "otto@contoso.com"
    requests_table.get_entity(partition_key="contoso.com", row_key="address:otto")
