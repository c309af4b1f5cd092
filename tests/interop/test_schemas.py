"""The Functions app's own files must match the JSON Schemas the Azure tooling uses.

host.json (draft-07), every <FunctionName>/function.json (draft-04) and
local.settings.json.example (draft-04) are checked against the SchemaStore schemas vendored in
tests/schemas (see NOTICE and SOURCE.md there). Each file is parsed as strict JSON: no
comments, no trailing commas, no duplicate keys, no NaN.

Each schema is checked with the validator of the draft its `$schema` names, with one
deliberate addition: the draft-04 function.json schema uses `const` (a draft-06 keyword) in its
sqlBinding and mySqlBinding definitions. A pure draft-04 validator ignores it, so those
definitions then match every binding and each binding's `oneOf` fails: the schema rejects even
a plain httpTrigger. SchemaStore's own checks validate draft-04 schemas with ajv-draft-04,
which honours `const` (its validation vocabulary includes it); so do we.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import jsonschema
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SCHEMA_DIR = REPO_ROOT / "tests" / "schemas"
NOT_FUNCTION_FOLDERS = {"node_modules", "target"}

FUNCTION_JSONS = sorted(
    path
    for path in REPO_ROOT.glob("*/function.json")
    if path.parent.name not in NOT_FUNCTION_FOLDERS and not path.parent.name.startswith(".")
)


# --- helpers ---------------------------------------------------------------------------------


def load_strict_json(path: Path):
    """Parse `path` as strict JSON, failing the test with the file and position if it is not."""

    def no_duplicate_keys(pairs):
        keys = [key for key, _ in pairs]
        duplicates = sorted({key for key in keys if keys.count(key) > 1})
        if duplicates:
            raise ValueError(f"duplicate keys {duplicates}")
        return dict(pairs)

    def no_constants(name):
        raise ValueError(f"{name} is not JSON")

    try:
        text = path.read_text(encoding="utf-8")
        return json.loads(text, object_pairs_hook=no_duplicate_keys, parse_constant=no_constants)
    except FileNotFoundError:
        pytest.fail(f"{path.relative_to(REPO_ROOT)} is missing", pytrace=False)
    except ValueError as error:  # JSONDecodeError is a ValueError
        pytest.fail(f"{path.relative_to(REPO_ROOT)} is not strict JSON: {error}", pytrace=False)


# Draft-04 as SchemaStore's ajv-draft-04 applies it: draft-04 plus `const` (see the top).
Draft4WithConst = jsonschema.validators.extend(
    jsonschema.Draft4Validator, {"const": jsonschema.Draft6Validator.VALIDATORS["const"]}
)


def validator_for(schema_file: str):
    """A validator of the draft the schema declares in `$schema` (draft-04 or draft-07)."""
    schema = load_strict_json(SCHEMA_DIR / schema_file)
    validator_class = jsonschema.validators.validator_for(schema, default=None)
    assert validator_class is not None, f"{schema_file}: unknown $schema {schema.get('$schema')!r}"
    validator_class.check_schema(schema)
    if validator_class is jsonschema.Draft4Validator:
        validator_class = Draft4WithConst
    return validator_class(schema)


def describe(error: jsonschema.ValidationError) -> str:
    """Where and why; for a failed oneOf/anyOf, also the closest alternative's complaint."""
    where = "/" + "/".join(str(part) for part in error.absolute_path)
    text = f"  at {where}: {error.message}"
    if error.context:
        closest = jsonschema.exceptions.best_match(error.context)
        text += f"\n    closest match failed because: {closest.message}"
    return text


def assert_valid(document_path: Path, schema_file: str) -> None:
    document = load_strict_json(document_path)
    errors = sorted(validator_for(schema_file).iter_errors(document), key=lambda e: list(e.path))
    details = "\n".join(describe(error) for error in errors)
    assert not errors, f"{document_path.relative_to(REPO_ROOT)} breaks {schema_file}:\n{details}"


# --- tests -----------------------------------------------------------------------------------


def test_vendored_schemas_are_the_recorded_upstream_files():
    recorded = dict(
        (name, digest)
        for digest, name in re.findall(
            r"^([0-9a-f]{64})\s+(\S+\.json)$", (SCHEMA_DIR / "SOURCE.md").read_text(), re.M
        )
    )
    assert set(recorded) == {
        "host.json.schema.json",
        "function.json.schema.json",
        "local.settings.json.schema.json",
    }
    for name, digest in recorded.items():
        actual = hashlib.sha256((SCHEMA_DIR / name).read_bytes()).hexdigest()
        assert actual == digest, f"tests/schemas/{name} differs from the upstream file"


@pytest.mark.parametrize(
    ("schema_file", "draft"),
    [
        ("host.json.schema.json", jsonschema.Draft7Validator),
        ("function.json.schema.json", jsonschema.Draft4Validator),
        ("local.settings.json.schema.json", jsonschema.Draft4Validator),
    ],
)
def test_each_schema_is_checked_with_its_own_draft(schema_file, draft):
    assert type(validator_for(schema_file)).META_SCHEMA == draft.META_SCHEMA


def test_draft_04_validation_honours_const_as_schemastore_does():
    # Without `const`, the function.json schema would reject this minimal, valid binding.
    function_json = {"bindings": [{"type": "http", "direction": "out", "name": "res"}]}
    assert validator_for("function.json.schema.json").is_valid(function_json)
    assert not validator_for("function.json.schema.json").is_valid({"bindings": [{"type": 1}]})


def test_host_json_matches_its_schema():
    assert_valid(REPO_ROOT / "host.json", "host.json.schema.json")


def test_the_app_has_function_folders():
    assert FUNCTION_JSONS, f"no <FunctionName>/function.json found in {REPO_ROOT}"


@pytest.mark.parametrize(
    "function_json", FUNCTION_JSONS, ids=[path.parent.name for path in FUNCTION_JSONS]
)
def test_function_json_matches_its_schema(function_json):
    assert_valid(function_json, "function.json.schema.json")


def test_local_settings_example_matches_its_schema():
    assert_valid(REPO_ROOT / "local.settings.json.example", "local.settings.json.schema.json")
