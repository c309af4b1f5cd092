"""The operator documents checked against what they describe: docs/DEPLOY.md against infra/,
README.md against scripts/, docs/PERFORMANCE.md against the decided budget (issue 15)."""

from __future__ import annotations

import re
from pathlib import Path

from conftest import INFRA, REPO_ROOT

DEPLOY = REPO_ROOT / "docs" / "DEPLOY.md"


def section(path: Path, heading: str) -> str:
    """The text under a Markdown heading (any level) up to the next heading of the same or a
    higher level; `#` lines inside fenced code blocks are not headings."""
    lines = path.read_text(encoding="utf-8").splitlines()
    fenced, level, body = False, None, []
    for line in lines:
        if line.startswith("```"):
            fenced = not fenced
        heading_match = None if fenced else re.match(r"^(#+) (.*?)\s*$", line)
        if level is None:
            if heading_match and heading_match.group(2) == heading:
                level = len(heading_match.group(1))
            continue
        if heading_match and len(heading_match.group(1)) <= level:
            break
        body.append(line)
    assert level is not None, f"{path.name} has no heading {heading!r}"
    return "\n".join(body) + "\n"


def test_deploy_md_has_a_publish_fallback_to_the_deployment_container():
    """Item 10: when `config-zip` and Core Tools refuse the package, upload it to the container
    the platform reads, sync triggers, restart."""
    fallback = section(DEPLOY, "When both publish commands refuse the package")
    main = (INFRA / "main.bicep").read_text(encoding="utf-8")
    container = re.search(r"^var deploymentContainerName = '([^']+)'$", main, re.M).group(1)
    upload = re.search(r"az storage blob upload (.*?)(?<!\\)\n", fallback, re.S)
    assert upload, "no `az storage blob upload` in the fallback"
    command = upload.group(1)
    assert "--auth-mode login" in command, "shared keys are off: the upload must sign in with Entra ID"
    assert f"--container-name {container}" in command, f"the upload must go to {container!r} (main.bicep)"
    assert "--file dist/b2b-signup.zip" in command, "the package scripts/package writes"
    steps = [
        fallback.index("az storage blob upload"),
        fallback.index("/syncfunctiontriggers?api-version="),
        fallback.index("az functionapp restart"),
    ]
    assert steps == sorted(steps), "upload, then sync triggers, then restart"
    assert "https://learn.microsoft.com/azure/azure-functions/functions-deployment-technologies#trigger-syncing" in fallback
