"""A mock Microsoft Entra ID on loopback, for the Python suites that call the admin API.

It serves what the app reads from Entra ID under `AZURE_AUTHORITY_HOST`, at Entra ID's own
paths: the tenant's v2.0 OpenID configuration (`issuer`, `jwks_uri`) and its signing keys
(the public half of `test-only-key-1` of tests/fixtures/entra/), and it signs v2.0 access
tokens for the admin API's app registration with the private half, RS256, with
`cryptography` (no signature code of our own). The keys are test-only and public: see
tests/fixtures/entra/README.md.

The server is a `http.server` thread on 127.0.0.1, an OS-chosen port; `stop()` shuts it
down. The Rust tests' equivalent is crates/test-support/src/identity.rs (`MockTenant`).
"""

from __future__ import annotations

import base64
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

KEYS_DIR = Path(__file__).resolve().parents[1] / "fixtures" / "entra"
KID = "test-only-key-1"
# Made-up ids: the mock tenant and the admin API's app registration in it.
TENANT_ID = "72f988bf-86f1-41af-91ab-2d7cd011db47"
ADMIN_APP_ID = "6e3c1f0a-7b7d-4c4e-9a55-0c2f7d1b9e01"
# The Azure CLI's client id: who asks for a signed-in administrator's token.
AZURE_CLI_CLIENT_ID = "04b07795-8ddb-461a-bbee-02f9e1bf7b46"
READ = "Signup.Read"
APPROVE = "Signup.Approve"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class MockEntra:
    """The tenant's OpenID configuration and keys over HTTP, and tokens signed for it."""

    def __init__(self) -> None:
        self._private_key = serialization.load_pem_private_key(
            (KEYS_DIR / f"{KID}.pem").read_bytes(), password=None
        )
        jwk = json.loads((KEYS_DIR / f"{KID}.jwk.json").read_text(encoding="utf-8"))
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self, jwk))
        self.authority = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="mock-entra", daemon=True
        )
        self._thread.start()

    @property
    def issuer(self) -> str:
        """What Entra ID v2.0 names as issuer: `{authority}/{tenant}/v2.0`."""
        return f"{self.authority}/{TENANT_ID}/v2.0"

    def settings(self) -> dict[str, str]:
        """The app settings that make the admin API trust this tenant."""
        return {
            "AZURE_AUTHORITY_HOST": self.authority,
            "AZURE_TENANT_ID": TENANT_ID,
            "SIGNUP_ADMIN_APP_ID": ADMIN_APP_ID,
        }

    def token(self, username: str, object_id: str, roles: list[str]) -> str:
        """A valid v2.0 access token for a signed-in administrator, valid for an hour."""
        now = int(time.time())
        claims = {
            "aud": ADMIN_APP_ID,
            "iss": self.issuer,
            "iat": now - 60,
            "nbf": now - 60,
            "exp": now + 3600,
            "azp": AZURE_CLI_CLIENT_ID,
            "oid": object_id,
            "preferred_username": username,
            "roles": roles,
            "scp": "access_as_user",
            "tid": TENANT_ID,
            "ver": "2.0",
        }
        header = {"alg": "RS256", "typ": "JWT", "kid": KID}
        signing_input = ".".join(
            _b64url(json.dumps(part, separators=(",", ":")).encode()) for part in (header, claims)
        )
        signature = self._private_key.sign(
            signing_input.encode("ascii"), padding.PKCS1v15(), hashes.SHA256()
        )
        return f"{signing_input}.{_b64url(signature)}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def _handler(entra: MockEntra, jwk: dict) -> type[BaseHTTPRequestHandler]:
    configuration_path = f"/{TENANT_ID}/v2.0/.well-known/openid-configuration"
    keys_path = f"/{TENANT_ID}/discovery/v2.0/keys"

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            if self.path == configuration_path:
                body = {
                    "issuer": entra.issuer,
                    "jwks_uri": f"{entra.authority}{keys_path}",
                    "token_endpoint": f"{entra.authority}/{TENANT_ID}/oauth2/v2.0/token",
                    "id_token_signing_alg_values_supported": ["RS256"],
                }
            elif self.path == keys_path:
                body = {"keys": [jwk]}
            else:
                self.send_error(404)
                return
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args) -> None:  # noqa: A002
            """Quiet: pytest's output is for the tests."""

    return Handler
