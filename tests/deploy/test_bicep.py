"""infra/*.bicep parsed with pycep-parser and checked for what the app needs and what security asks.

No Bicep compiler runs here (it is a .NET tool that downloads itself): these tests read the parse
tree. pycep keeps identifiers (parameters, variables, resource symbols) as
`pycep.models.BicepElement` and quoted literals as plain `str`, which is how a test tells a value
that comes from a parameter from one written into the file.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import INFRA, REPO_ROOT, function_folders
from pycep.models import BicepElement

# Azure built-in role definition ids: tenant-independent GUIDs, as published in
# https://learn.microsoft.com/azure/role-based-access-control/built-in-roles/storage and
# https://learn.microsoft.com/azure/role-based-access-control/built-in-roles/monitor
# (each role's JSON there: "id": "/providers/Microsoft.Authorization/roleDefinitions/<guid>").
BUILT_IN_ROLES = {
    "Storage Blob Data Owner": "b7e6dc6d-f1e8-4753-8033-0f276bb0955b",
    "Storage Queue Data Contributor": "974c5e8b-45b9-4653-ba55-5f855dd0fb88",
    "Storage Table Data Contributor": "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3",
    "Monitoring Metrics Publisher": "3913510d-42f4-4e42-8a64-420c390055eb",
    # Sending mail through Azure Communication Services with the managed identity (src/mail).
    "Communication and Email Service Owner": "09976791-48a7-449e-bb21-39d1a415f350",
}
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
GRAPH_PERMISSIONS = ["User.Invite.All", "GroupMember.ReadWrite.All", "User.Read.All"]
GUID = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.I)
# App setting names that would carry a credential, or switch the app to a client secret
# credential (src/graph/settings.rs uses one only with AZURE_TENANT_ID, AZURE_CLIENT_ID and
# AZURE_CLIENT_SECRET all set; AZURE_TENANT_ID alone names the admin API's tenant).
SECRET_SETTING = re.compile(r"SECRET|PASSWORD|ACCOUNTKEY|ACCESSKEY|INSTRUMENTATIONKEY|SAS\b|TOKEN", re.I)
FORBIDDEN_SETTINGS = {"AZURE_CLIENT_SECRET", "AZURE_CLIENT_ID", "AzureWebJobsStorage"}
SECRET_VALUE = re.compile(r"AccountKey=|SharedAccessSignature=|[?&]sig=|InstrumentationKey=", re.I)


# --- helpers -----------------------------------------------------------------------------------


def walk(node):
    """Every dict, list and scalar under `node`, depth first."""
    yield node
    if isinstance(node, dict):
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value)


def literals(node) -> list[str]:
    """Quoted strings written into the file (not identifiers) anywhere under `node`."""
    return [v for v in walk(node) if isinstance(v, str) and not isinstance(v, BicepElement)]


def body(resource: dict) -> dict:
    """A resource's or module's object, unwrapping `[for ...]` loops and `if (...)` conditions."""
    config = resource["config"]
    while isinstance(config, dict) and ("loop_type" in config or "condition" in config) and "config" in config:
        config = config["config"]
    return config


def resources_of(tree: dict, type_: str, *, existing: bool = False) -> dict[str, dict]:
    return {
        name: body(res)
        for name, res in tree.get("resources", {}).items()
        if res["type"] == type_ and res["existing"] == existing
    }


def the_resource(tree: dict, type_: str) -> dict:
    found = resources_of(tree, type_)
    assert len(found) == 1, f"expected one {type_}, found {sorted(found)}"
    return next(iter(found.values()))


def is_ref(value, name: str) -> bool:
    """`value` is the identifier `name` (a parameter, variable or symbol), not a literal."""
    return isinstance(value, BicepElement) and value == name


def property_path(value) -> list[str]:
    """`a.b.c` as ['a', 'b', 'c'] from pycep's nested property_accessor operators."""
    if isinstance(value, str):
        return [str(value)]
    operator = value.get("operator", {}) if isinstance(value, dict) else {}
    if operator.get("type") == "property_accessor":
        operands = operator["operands"]
        return property_path(operands["operand_1"]) + property_path(operands["operand_2"])
    return []


def app_settings(parsed) -> dict[str, object]:
    site = the_resource(parsed["modules/function-app.bicep"], "Microsoft.Web/sites")
    settings = site["properties"]["siteConfig"]["appSettings"]
    names = [setting["name"] for setting in settings]
    assert len(names) == len(set(names)), f"duplicate app settings: {names}"
    return {setting["name"]: setting["value"] for setting in settings}


def bicep_source_without_comments(path: Path) -> str:
    text = path.read_text(encoding="utf-8")
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return "\n".join(re.sub(r"//.*$", "", line) for line in text.splitlines())


# --- parsing and wiring --------------------------------------------------------------------------


def test_every_bicep_file_parses(parsed, bicep_files):
    assert set(parsed) == {path.relative_to(INFRA).as_posix() for path in bicep_files}
    assert {"main.bicep", "graph-permissions.bicep", "admin-api.bicep"} <= set(parsed)


def test_main_passes_every_required_module_parameter_and_no_unknown_one(parsed):
    main = parsed["main.bicep"]
    assert main["modules"], "main.bicep deploys no module"
    for symbol, module in main["modules"].items():
        path = module["detail"]["path"]
        assert path in parsed, f"module {symbol} points at {path}, which is not a parsed file"
        declared = parsed[path]["parameters"]
        given = body(module)["params"]
        unknown = set(given) - set(declared)
        assert not unknown, f"{symbol} passes parameters {path} does not declare: {unknown}"
        required = {name for name, param in declared.items() if param["default"] is None}
        missing = required - set(given)
        assert not missing, f"{symbol} does not pass required parameters of {path}: {missing}"


def test_every_parameter_is_used(parsed):
    for file, tree in parsed.items():
        rest = {key: value for key, value in tree.items() if key != "parameters"}
        used = {node for node in walk(rest) if isinstance(node, BicepElement)}
        # pycep keeps an interpolated string ('${a}${b}') as one literal.
        for text in literals(rest):
            used |= {name for expression in re.findall(r"\$\{([^}]*)\}", text) for name in re.findall(r"\w+", expression)}
        # A parameter used only inside another parameter's default (e.g. location) counts too.
        for param in tree.get("parameters", {}).values():
            used |= {node for node in walk(param["default"]) if isinstance(node, BicepElement)}
        unused = set(tree.get("parameters", {})) - used
        assert not unused, f"{file}: unused parameters {sorted(unused)}"


def test_example_parameter_file_sets_only_declared_parameters():
    text = (INFRA / "main.bicepparam").read_text(encoding="utf-8")
    assert re.search(r"^using '\./main\.bicep'$", text, re.M), "main.bicepparam must be `using './main.bicep'`"
    assigned = re.findall(r"^param\s+(\w+)\s*=", text, re.M)
    main_params = set(re.findall(r"^param\s+(\w+)\s", (INFRA / "main.bicep").read_text(encoding="utf-8"), re.M))
    assert assigned, "main.bicepparam assigns nothing"
    assert set(assigned) <= main_params, f"unknown parameters: {set(assigned) - main_params}"
    assert "'*'" not in text


# --- storage -------------------------------------------------------------------------------------


def test_every_storage_account_is_tls12_https_only_private_and_keyless(parsed):
    accounts = {
        (file, name): config
        for file, tree in parsed.items()
        for name, config in resources_of(tree, "Microsoft.Storage/storageAccounts").items()
    }
    assert len(accounts) == 2, f"expected the app and the site storage accounts, found {sorted(accounts)}"
    for where, account in accounts.items():
        properties = account["properties"]
        assert properties["minimumTlsVersion"] == "TLS1_2", where
        assert properties["supportsHttpsTrafficOnly"] is True, where
        assert properties["allowBlobPublicAccess"] is False, where
        # Every client signs in with Microsoft Entra ID: the host (identity-based
        # AzureWebJobsStorage), the Flex deployment (SystemAssignedIdentity), the app, operators.
        assert properties["allowSharedKeyAccess"] is False, where
        assert properties["defaultToOAuthAuthentication"] is True, where


def _rust_const(name: str) -> str:
    source = (REPO_ROOT / "src" / "storage" / "mod.rs").read_text(encoding="utf-8")
    match = re.search(rf'pub const {name}: &str = "([^"]+)";', source)
    assert match, f"src/storage/mod.rs no longer defines {name}"
    return match.group(1)


def _rust_tables() -> list[str]:
    """Every table the app uses: each `pub const <NAME>_TABLE` in src/storage/mod.rs."""
    source = (REPO_ROOT / "src" / "storage" / "mod.rs").read_text(encoding="utf-8")
    tables = re.findall(r'pub const [A-Z_]+_TABLE: &str = "([^"]+)";', source)
    assert tables, "src/storage/mod.rs defines no *_TABLE constants"
    return tables


def test_the_queues_and_tables_the_app_uses_are_created(parsed):
    main, storage = parsed["main.bicep"], parsed["modules/storage.bicep"]
    queues = main["variables"]["queueNames"]["value"]
    tables = main["variables"]["tableNames"]["value"]
    assert sorted(queues) == sorted([_rust_const("INVITE_QUEUE"), _rust_const("INVITE_POISON_QUEUE")])
    assert sorted(tables) == sorted(_rust_tables())
    params = body(main["modules"]["storage"])["params"]
    assert is_ref(params["queueNames"], "queueNames") and is_ref(params["tableNames"], "tableNames")

    loops = {res["type"]: res["config"] for res in storage["resources"].values() if "loop_type" in res["config"]}
    queue_loop = loops["Microsoft.Storage/storageAccounts/queueServices/queues"]
    table_loop = loops["Microsoft.Storage/storageAccounts/tableServices/tables"]
    assert queue_loop["loop_type"]["detail"]["array_name"] == "queueNames"
    assert table_loop["loop_type"]["detail"]["array_name"] == "tableNames"
    assert is_ref(queue_loop["config"]["name"], queue_loop["loop_type"]["detail"]["item_name"])
    assert is_ref(table_loop["config"]["name"], table_loop["loop_type"]["detail"]["item_name"])


def test_every_queue_a_function_is_triggered_by_is_created(parsed):
    queues = set(parsed["main.bicep"]["variables"]["queueNames"]["value"])
    for folder in function_folders():
        bindings = json.loads((REPO_ROOT / folder / "function.json").read_text(encoding="utf-8"))["bindings"]
        for binding in bindings:
            if binding.get("type") == "queueTrigger":
                assert binding["queueName"] in queues, f"{folder} listens on {binding['queueName']}, not in main.bicep"
                assert binding.get("connection", "AzureWebJobsStorage") == "AzureWebJobsStorage", folder


def test_the_deployment_container_is_private(parsed):
    container = the_resource(parsed["modules/storage.bicep"], "Microsoft.Storage/storageAccounts/blobServices/containers")
    assert container["properties"]["publicAccess"] == "None"


def test_the_signup_page_is_a_static_website(parsed):
    site = parsed["modules/signup-site.bicep"]
    blob = the_resource(site, "Microsoft.Storage/storageAccounts/blobServices")
    assert blob["properties"]["staticWebsite"]["enabled"] is True
    # staticWebsite is settable through ARM from this Microsoft.Storage API version on.
    api = {res["api_version"] for res in site["resources"].values() if res["type"].endswith("blobServices")}
    assert api == {"2025-08-01"}


# --- the Function App ------------------------------------------------------------------------------


def test_the_plan_is_flex_consumption_on_linux(parsed):
    plan = the_resource(parsed["modules/function-app.bicep"], "Microsoft.Web/serverfarms")
    assert plan["sku"] == {"tier": "FlexConsumption", "name": "FC1"}
    assert plan["properties"]["reserved"] is True  # Linux


def test_the_site_is_a_linux_custom_handler_with_its_own_identity(parsed):
    site = the_resource(parsed["modules/function-app.bicep"], "Microsoft.Web/sites")
    assert set(site["kind"].split(",")) == {"functionapp", "linux"}
    assert site["identity"] == {"type": "SystemAssigned"}
    config = site["properties"]["functionAppConfig"]
    # FUNCTIONS_WORKER_RUNTIME=custom (local.settings.json) is functionAppConfig.runtime.name on
    # Flex Consumption, where the app setting is deprecated.
    assert config["runtime"]["name"] == "custom"
    assert is_ref(config["runtime"]["version"], "runtimeVersion")
    deployment = config["deployment"]["storage"]
    assert deployment["type"] == "blobContainer"
    assert deployment["authentication"] == {"type": "SystemAssignedIdentity"}
    local = json.loads((REPO_ROOT / "local.settings.json.example").read_text(encoding="utf-8"))
    assert local["Values"]["FUNCTIONS_WORKER_RUNTIME"] == config["runtime"]["name"]


def test_the_site_is_https_only_with_ftp_off(parsed):
    tree = parsed["modules/function-app.bicep"]
    site = the_resource(tree, "Microsoft.Web/sites")
    assert site["properties"]["httpsOnly"] is True
    assert site["properties"]["siteConfig"]["minTlsVersion"] == "1.2"
    policies = resources_of(tree, "Microsoft.Web/sites/basicPublishingCredentialsPolicies")
    by_name = {config["name"]: config["properties"]["allow"] for config in policies.values()}
    assert by_name["ftp"] is False
    assert "scm" in by_name


# Site properties that Flex Consumption deprecates and ARM may refuse (ftpsState: error 51021 in
# some regions), as listed in
# https://learn.microsoft.com/azure/azure-functions/functions-app-settings#flex-consumption-plan-deprecations
# (Azure Verified Modules test that ftpsState is omitted for Flex apps). FTP is off through the
# `ftp` basicPublishingCredentialsPolicies resource instead.
FLEX_DEPRECATED_SITE_CONFIG = {
    "ftpsState",
    "use32BitWorkerProcess",
    "linuxFxVersion",
    "netFrameworkVersion",
    "javaVersion",
    "powerShellVersion",
    "functionAppScaleLimit",
    "preWarmedInstanceCount",
}


def test_the_site_sets_no_property_flex_consumption_deprecates(parsed):
    site = the_resource(parsed["modules/function-app.bicep"], "Microsoft.Web/sites")
    deprecated = FLEX_DEPRECATED_SITE_CONFIG & set(site["properties"]["siteConfig"])
    assert not deprecated, f"siteConfig sets {sorted(deprecated)}, deprecated on Flex Consumption"
    source = bicep_source_without_comments(INFRA / "modules" / "function-app.bicep")
    assert not re.search(r"\bftpsState\b", source), "ftpsState is refused on Flex Consumption in some regions"


# Microsoft Graph's invitation manager: 150 requests per 5 seconds per tenant, all apps together
# (https://learn.microsoft.com/graph/throttling-limits#invitation-manager-service-limits).
GRAPH_INVITATIONS_PER_5_SECONDS = 150


def _decorators(param: dict) -> dict:
    return {decorator["type"]: decorator.get("argument") for decorator in param["decorators"]}


def test_maximum_instance_count_allows_the_documented_minimum(parsed):
    """Flex Consumption takes 1 to 1000, per function scale group
    (https://learn.microsoft.com/azure/azure-functions/flex-consumption-plan#per-function-scaling)."""
    for file in ("main.bicep", "modules/function-app.bicep"):
        decorators = _decorators(parsed[file]["parameters"]["maximumInstanceCount"])
        assert decorators.get("min_value") == 1, f"{file}: @minValue must be the documented 1"
        assert decorators.get("max_value") == 1000, file


def test_the_default_instance_count_keeps_invitations_near_graphs_limit():
    """Only InviteQueue invites, once per delivery; one instance runs batchSize + newBatchThreshold
    deliveries at once. With the default, if an invitation and its group add took one second,
    the app alone stays under Graph's 150 per 5 s (30/s). docs/DEPLOY.md, "Scale", shows the sums."""
    main = (INFRA / "main.bicep").read_text(encoding="utf-8")
    default = int(re.search(r"^param maximumInstanceCount int = (\d+)$", main, re.M).group(1))
    example = (INFRA / "main.bicepparam").read_text(encoding="utf-8")
    assert int(re.search(r"^param maximumInstanceCount = (\d+)$", example, re.M).group(1)) == default
    queues = json.loads((REPO_ROOT / "host.json").read_text(encoding="utf-8"))["extensions"]["queues"]
    per_instance = queues["batchSize"] + queues["newBatchThreshold"]
    in_flight = default * per_instance
    assert in_flight * 5 <= GRAPH_INVITATIONS_PER_5_SECONDS, (
        f"{default} instance(s) x {per_instance} deliveries = {in_flight} invitations in flight: "
        f"{in_flight * 5} per 5 s at one second each, over Graph's {GRAPH_INVITATIONS_PER_5_SECONDS}"
    )
    deploy = (REPO_ROOT / "docs" / "DEPLOY.md").read_text(encoding="utf-8")
    sums = f"{queues['batchSize']} + {queues['newBatchThreshold']} = {per_instance}"
    assert sums in deploy, f"docs/DEPLOY.md does not show {sums!r} (host.json changed?)"
    assert f"maximumInstanceCount` (default {default}," in deploy, "docs/DEPLOY.md's cost notes name another default"
    assert "https://learn.microsoft.com/graph/throttling-limits#invitation-manager-service-limits" in deploy


def test_app_settings_cover_what_azure_needs_from_local_settings(parsed):
    settings = app_settings(parsed)
    assert settings["SIGNUP_DRY_RUN"] == "false"
    assert settings["SIGNUP_LOG_FORMAT"] == "json"
    assert settings["SIGNUP_POLICY_PATH"] == "policy.json"  # scripts/package puts it there
    assert is_ref(settings["GRAPH_BASE_URL"], "graphBaseUrl")
    assert is_ref(settings["RUST_LOG"], "rustLog")
    assert "SIGNUP_SITE_URL" in settings, "no-JavaScript form posts are redirected to the page's origin"
    # Identity-based host storage, read by the host and by crates/webjobs-storage/src/lib.rs.
    assert property_path(settings["AzureWebJobsStorage__accountName"]) == ["storage", "name"]
    assert settings["AzureWebJobsStorage__credential"] == "managedidentity"
    assert settings["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"] == "Authorization=AAD"
    assert property_path(settings["APPLICATIONINSIGHTS_CONNECTION_STRING"]) == [
        "appInsights",
        "properties",
        "ConnectionString",
    ]

    local = json.loads((REPO_ROOT / "local.settings.json.example").read_text(encoding="utf-8"))["Values"]
    # How each local setting is carried in Azure when it is not an app setting of the same name.
    carried_otherwise = {
        "FUNCTIONS_WORKER_RUNTIME": "functionAppConfig.runtime.name",
        "AzureWebJobsStorage": "AzureWebJobsStorage__accountName + __*ServiceUri (identity-based)",
        # Local client-secret credential for Graph; in Azure the managed identity is used.
        "AZURE_TENANT_ID": "managed identity",
        "AZURE_CLIENT_ID": "managed identity",
        "AZURE_CLIENT_SECRET": "managed identity",
        "AZURE_AUTHORITY_HOST": "managed identity",
        # The local host runner's keys; Azure manages function keys itself.
        "B2B_HOST_FUNCTION_KEYS": "Azure function keys",
        # Secrets: set by the operator as Key Vault references (docs/DEPLOY.md), never in Bicep.
        "APPROVAL_WEBHOOK_URL": "Key Vault reference",
        "SIGNUP_CAPTCHA_SECRET": "Key Vault reference",
        # Optional, set by the operator with the secret they belong to (docs/DEPLOY.md).
        "SIGNUP_CAPTCHA_PROVIDER": "operator, with the captcha secret",
        "SIGNUP_CAPTCHA_VERIFY_URL": "provider default",
        "SIGNUP_PUBLIC_BASE_URL": "operator, once the host name is known",
        # The code's defaults are the values for Azure.
        "GRAPH_TIMEOUT_SECONDS": "code default",
        "GRAPH_MAX_INLINE_RETRY_SECONDS": "code default",
        "SIGNUP_RATE_LIMITS": "code default",
        "SIGNUP_TRUSTED_PROXY_HOPS": "code default (1: the Functions front end)",
        # Mail: the managed identity signs in; no access key exists in Azure.
        "SIGNUP_MAIL_ACCESS_KEY": "managed identity",
        "SIGNUP_VERIFY_HOURS": "code default (24)",
        "SIGNUP_APPROVER_EMAILS": "operator, the approvers' addresses",
        # Optional branding, set by the operator (docs/DEPLOY.md, az functionapp config appsettings set).
        "SIGNUP_LOGO_URL": "operator, optional branding",
        "SIGNUP_SUPPORT_CONTACT": "operator, optional branding",
        "SIGNUP_PRIVACY_URL": "operator, optional branding",
    }
    for name in local:
        assert name in settings or name in carried_otherwise, f"{name} from local.settings.json.example is not set in Azure"


def test_mail_goes_through_communication_services_with_the_managed_identity(parsed):
    """Issue 18: a Communication Services resource linked to an Email service's Azure-managed
    domain; the app gets its endpoint and sender, and no access key anywhere."""
    tree = parsed["modules/communication.bicep"]
    domain = next(iter(resources_of(tree, "Microsoft.Communication/emailServices/domains").values()))
    assert domain["properties"]["domainManagement"] == "AzureManaged"
    assert domain["properties"]["userEngagementTracking"] == "Disabled"
    acs = next(iter(resources_of(tree, "Microsoft.Communication/communicationServices").values()))
    assert property_path(acs["properties"]["linkedDomains"][0]) == ["managedDomain", "id"]
    settings = app_settings(parsed)
    for name in ("SIGNUP_MAIL_ENDPOINT", "SIGNUP_MAIL_SENDER", "SIGNUP_ORG_NAME"):
        assert name in settings, name
    assert "SIGNUP_MAIL_ACCESS_KEY" not in settings
    params = body(parsed["main.bicep"]["modules"]["functionApp"])["params"]
    assert property_path(params["mailEndpoint"]) == ["communication", "outputs", "endpoint"]
    assert property_path(params["mailSender"]) == ["communication", "outputs", "sender"]


def test_host_storage_is_reached_by_the_accounts_own_endpoints(parsed):
    """National clouds and custom DNS: the service URIs come from the account, not from its name
    (https://learn.microsoft.com/azure/azure-functions/functions-reference#connecting-to-host-storage-with-an-identity);
    crates/webjobs-storage/src/lib.rs prefers them over __accountName."""
    settings = app_settings(parsed)
    for service in ("blob", "queue", "table"):
        name = f"AzureWebJobsStorage__{service}ServiceUri"
        assert name in settings, f"{name} is not set"
        assert property_path(settings[name]) == ["storage", "properties", "primaryEndpoints", service], name
    assert settings["AzureWebJobsStorage__credential"] == "managedidentity"
    source = (REPO_ROOT / "crates" / "webjobs-storage" / "src" / "lib.rs").read_text(encoding="utf-8")
    for service in ("table", "queue"):
        assert f'service_uri("{service}")' in source, f"the binary does not read __{service}ServiceUri"
    # No endpoint is spelled out for the public cloud anywhere in the templates.
    for file, tree in parsed.items():
        for value in literals(tree):
            assert "core.windows.net" not in value, f"{file} hard-codes {value!r}"


def test_no_app_setting_is_or_enables_a_secret(parsed):
    settings = app_settings(parsed)
    assert not FORBIDDEN_SETTINGS & set(settings), FORBIDDEN_SETTINGS & set(settings)
    for name in settings:
        assert not SECRET_SETTING.search(name), f"app setting {name} looks like a credential"
    # Flex Consumption refuses these, and none is needed.
    for deprecated in ("FUNCTIONS_WORKER_RUNTIME", "FUNCTIONS_EXTENSION_VERSION", "WEBSITE_RUN_FROM_PACKAGE"):
        assert deprecated not in settings
    for value in literals(list(settings.values())):
        assert not SECRET_VALUE.search(value), f"app setting value {value!r} looks like a credential"


@pytest.mark.parametrize("relative", ["main.bicep", "modules/function-app.bicep", "modules/storage.bicep",
                                      "modules/monitoring.bicep", "modules/signup-site.bicep",
                                      "modules/role-assignments.bicep", "graph-permissions.bicep",
                                      "admin-api.bicep", "modules/app-identifier-uri.bicep"])
def test_no_key_is_read_anywhere(parsed, relative):
    tree = parsed[relative]
    for node in walk(tree):
        if isinstance(node, dict) and node.get("type") in {"list_func", "function_accessor"}:
            name = node.get("detail", {}).get("func_name") or node.get("operands", {}).get("func_name", "")
            assert not str(name).lower().startswith("list"), f"{relative} calls {name}()"
    source = bicep_source_without_comments(INFRA / relative)
    assert not re.search(r"\blist[A-Z]\w*\s*\(", source), f"{relative} calls a list*() function"
    for value in literals(tree):
        assert not SECRET_VALUE.search(value), f"{relative} holds {value!r}"


def test_outputs_are_names_and_ids_not_secrets(parsed):
    outputs = parsed["main.bicep"]["outputs"]
    assert {"appName", "defaultHostName", "storageAccountName", "principalId"} <= set(outputs)
    for file, tree in parsed.items():
        for name, output in tree.get("outputs", {}).items():
            assert not re.search(r"key|secret|password|connection|token", name, re.I), f"{file} output {name}"
            for node in walk(output):
                if isinstance(node, str):
                    assert "ConnectionString" not in node and "InstrumentationKey" not in node, f"{file} output {name}"
            assert "@secure" not in json.dumps(output["decorators"], default=str)


def test_application_insights_accepts_only_entra_authenticated_telemetry(parsed):
    monitoring = parsed["modules/monitoring.bicep"]
    component = the_resource(monitoring, "Microsoft.Insights/components")
    assert component["properties"]["DisableLocalAuth"] is True
    assert property_path(component["properties"]["WorkspaceResourceId"]) == ["workspace", "id"]


# --- CORS ----------------------------------------------------------------------------------------


def test_cors_origins_come_from_parameters_and_never_the_wildcard(parsed):
    site = the_resource(parsed["modules/function-app.bicep"], "Microsoft.Web/sites")
    cors = site["properties"]["siteConfig"]["cors"]
    assert is_ref(cors["allowedOrigins"], "corsAllowedOrigins")
    assert cors["supportCredentials"] is False

    main = parsed["main.bicep"]
    assert is_ref(body(main["modules"]["functionApp"])["params"]["corsAllowedOrigins"], "allowedOrigins")
    assert main["parameters"]["corsAllowedOrigins"]["type"] == "array"
    allowed = main["variables"]["allowedOrigins"]["value"]["function"]
    assert allowed["type"] == "filter"
    union = allowed["parameters"]["input_array"]["function"]
    assert union["type"] == "union" and is_ref(union["parameters"]["arg_1"], "corsAllowedOrigins")
    lambda_ = allowed["parameters"]["expression"]["detail"]
    condition = lambda_["expression"]["operator"]
    assert condition["type"] == "not_equals"
    assert is_ref(condition["operands"]["operand_1"], lambda_["var_1"]) and condition["operands"]["operand_2"] == "*"
    for file, tree in parsed.items():
        assert "*" not in literals(tree.get("parameters", {})), f"{file} has '*' in a parameter default"


# --- identity and permissions ------------------------------------------------------------------------


def test_role_definition_ids_are_the_documented_built_in_roles(parsed):
    tree = parsed["modules/role-assignments.bicep"]
    role_ids = tree["variables"]["roleIds"]["value"]
    assert set(role_ids.values()) == set(BUILT_IN_ROLES.values())
    source = bicep_source_without_comments(INFRA / "modules" / "role-assignments.bicep")
    assert set(GUID.findall(source)) == set(BUILT_IN_ROLES.values()), "a role GUID that is not documented above"


def test_the_identity_gets_exactly_the_data_roles_it_needs_on_the_resources_it_uses(parsed):
    tree = parsed["modules/role-assignments.bicep"]
    role_ids = tree["variables"]["roleIds"]["value"]
    by_guid = {guid: name for name, guid in BUILT_IN_ROLES.items()}
    assignments = resources_of(tree, "Microsoft.Authorization/roleAssignments")
    granted = {}
    for symbol, assignment in assignments.items():
        properties = assignment["properties"]
        assert is_ref(properties["principalId"], "principalId"), symbol
        assert properties["principalType"] == "ServicePrincipal", symbol
        role_function = properties["roleDefinitionId"]["function"]
        assert role_function["type"] == "subscription_resource_id", symbol
        role_key = property_path(role_function["parameters"]["resource_name_1"])
        assert role_key[0] == "roleIds", symbol
        granted[by_guid[role_ids[role_key[1]]]] = str(assignment["scope"])
    assert granted == {
        "Storage Blob Data Owner": "storage",
        "Storage Queue Data Contributor": "storage",
        "Storage Table Data Contributor": "storage",
        "Monitoring Metrics Publisher": "appInsights",
        "Communication and Email Service Owner": "communication",
    }
    main = parsed["main.bicep"]
    params = body(main["modules"]["roleAssignments"])["params"]
    assert property_path(params["principalId"]) == ["functionApp", "outputs", "principalId"]


def test_graph_permissions_are_exactly_invite_and_group_membership(parsed):
    tree = parsed["graph-permissions.bicep"]
    assert "microsoftGraphV1" in tree["extensions"]
    assert tree["variables"]["appRoleValues"]["value"] == GRAPH_PERMISSIONS
    assert tree["variables"]["graphAppId"]["value"] == GRAPH_APP_ID
    graph = resources_of(tree, "Microsoft.Graph/servicePrincipals", existing=True)
    assert [is_ref(sp["appId"], "graphAppId") for sp in graph.values()] == [True]
    loop = next(res["config"] for res in tree["resources"].values() if res["type"] == "Microsoft.Graph/appRoleAssignedTo")
    assert loop["loop_type"]["detail"]["array_name"] == "appRoleValues"
    assert is_ref(loop["config"]["principalId"], "principalId")
    # The app role ids are looked up by value at deployment time, never written in.
    source = bicep_source_without_comments(INFRA / "graph-permissions.bicep")
    assert set(GUID.findall(source)) == {GRAPH_APP_ID}

    script = (INFRA / "grant-graph-permissions.sh").read_text(encoding="utf-8")
    match = re.search(r"^PERMISSIONS=\(([^)]*)\)", script, re.M)
    assert match and match.group(1).split() == GRAPH_PERMISSIONS


# --- the admin API's app registration (issue 16, item 5) ------------------------------------------

ADMIN_API = "admin-api.bicep"
IDENTIFIER_URI_MODULE = "modules/app-identifier-uri.bicep"
ADMIN_ROLES = ["Signup.Read", "Signup.Approve"]
# The Microsoft Azure CLI's well-known client id: the only GUID admin-api.bicep may spell out.
AZURE_CLI_APP_ID = "04b07795-8ddb-461a-bbee-02f9e1bf7b46"


def _admin_app(parsed) -> dict:
    return the_resource(parsed[ADMIN_API], "Microsoft.Graph/applications")


def _roles_by_value(parsed) -> dict[str, dict]:
    return {str(role["value"]): role for role in _admin_app(parsed)["appRoles"]}


def _is_tenant_id(value) -> bool:
    """`tenant().tenantId` as pycep parses it."""
    operator = value.get("operator", {}) if isinstance(value, dict) else {}
    operands = operator.get("operands", {})
    return (
        operator.get("type") == "property_accessor"
        and operands.get("operand_1") == {"function": {"type": "tenant"}}
        and operands.get("operand_2") == "tenantId"
    )


def test_the_admin_api_registration_is_single_tenant_idempotent_and_asks_for_v2_tokens(parsed):
    tree = parsed[ADMIN_API]
    assert "microsoftGraphV1" in tree["extensions"]
    app = _admin_app(parsed)
    # uniqueName is the extension's client-provided key: without it no redeployment finds the app.
    assert is_ref(app["uniqueName"], "uniqueName")
    assert tree["parameters"]["uniqueName"]["default"], "a default uniqueName keeps redeployments on one app"
    assert is_ref(app["displayName"], "displayName")
    assert app["signInAudience"] == "AzureADMyOrg"
    # The handler accepts v2.0 access tokens only (DESIGN: "v2.0 tokens").
    assert app["api"]["requestedAccessTokenVersion"] == 2


def test_the_admin_api_declares_both_roles_with_stable_ids(parsed):
    tree = parsed[ADMIN_API]
    roles = _roles_by_value(parsed)
    assert sorted(roles) == sorted(ADMIN_ROLES)
    ids = set()
    for value, role in roles.items():
        assert role["allowedMemberTypes"] == ["User", "Application"], value
        assert role["isEnabled"] is True, value
        assert role["description"] and role["displayName"], value
        # The id is a variable derived with guid(tenant, uniqueName, role): the same on every
        # deployment of one installation, so assignments made against it keep working.
        assert isinstance(role["id"], BicepElement), f"{value}: the role id must come from a variable"
        derived = tree["variables"][str(role["id"])]["value"]["function"]
        assert derived["type"] == "guid", value
        arguments = list(derived["parameters"].values())
        assert _is_tenant_id(arguments[0]), value
        assert is_ref(arguments[1], "uniqueName") and arguments[2] == value, value
        ids.add(str(role["id"]))
    assert len(ids) == 2
    # No GUID copied by hand: only the Azure CLI's well-known client id is written in.
    source = bicep_source_without_comments(INFRA / ADMIN_API)
    assert set(GUID.findall(source)) <= {AZURE_CLI_APP_ID}


def test_the_identifier_uri_is_api_app_id_set_once_the_app_exists(parsed):
    """The appId exists only after creation: a module declares the same app (same uniqueName)
    again with identifierUris ['api://<appId>'] (modules/app-identifier-uri.bicep)."""
    modules = parsed[ADMIN_API]["modules"]
    calls = [body(module) for module in modules.values() if module["detail"]["path"] == IDENTIFIER_URI_MODULE]
    assert len(calls) == 1, f"{ADMIN_API} does not deploy {IDENTIFIER_URI_MODULE}"
    params = calls[0]["params"]
    assert is_ref(params["uniqueName"], "uniqueName"), "the module must update the same app"
    assert is_ref(params["displayName"], "displayName")
    app_symbol = next(name for name, res in parsed[ADMIN_API]["resources"].items()
                      if res["type"] == "Microsoft.Graph/applications")
    assert property_path(params["appId"]) == [app_symbol, "appId"]

    module = parsed[IDENTIFIER_URI_MODULE]
    assert "microsoftGraphV1" in module["extensions"]
    again = the_resource(module, "Microsoft.Graph/applications")
    assert is_ref(again["uniqueName"], "uniqueName") and is_ref(again["displayName"], "displayName")
    assert again["identifierUris"] == ["api://${appId}"]
    # Nothing else is declared there, so the PATCH leaves the roles and api settings alone.
    assert set(again) == {"uniqueName", "displayName", "identifierUris"}
    assert parsed[ADMIN_API]["outputs"]["identifierUri"]


def test_only_assigned_principals_get_tokens_for_the_admin_api(parsed):
    tree = parsed[ADMIN_API]
    sp = the_resource(tree, "Microsoft.Graph/servicePrincipals")
    app_symbol = next(name for name, res in tree["resources"].items() if res["type"] == "Microsoft.Graph/applications")
    assert property_path(sp["appId"]) == [app_symbol, "appId"]
    assert sp["appRoleAssignmentRequired"] is True


def test_the_approvers_group_gets_signup_approve(parsed):
    tree = parsed[ADMIN_API]
    roles = _roles_by_value(parsed)
    approve, read = str(roles["Signup.Approve"]["id"]), str(roles["Signup.Read"]["id"])
    sp_symbol = next(name for name, res in tree["resources"].items() if res["type"] == "Microsoft.Graph/servicePrincipals")
    assignments = {
        name: res for name, res in tree["resources"].items() if res["type"] == "Microsoft.Graph/appRoleAssignedTo"
    }
    by_principal = {}
    for name, res in assignments.items():
        config = body(res)
        assert property_path(config["resourceId"]) == [sp_symbol, "id"], name
        principal = config["principalId"]
        if "loop_type" in res["config"]:
            principal = res["config"]["loop_type"]["detail"]["array_name"]
            assert is_ref(config["principalId"], res["config"]["loop_type"]["detail"]["item_name"]), name
        by_principal[str(principal)] = (str(config["appRoleId"]), res["config"])
    assert by_principal["approversGroupId"][0] == approve
    # Optional: deployed only when a group is named (the parameter's default is empty).
    assert tree["parameters"]["approversGroupId"]["default"] == ""
    assert "condition" in by_principal["approversGroupId"][1], "no group, no assignment"
    # Entra ID Free has no group-based assignment: users one by one, per role.
    assert by_principal["approverUserIds"][0] == approve
    assert by_principal["readerUserIds"][0] == read
    assert set(by_principal) == {"approversGroupId", "approverUserIds", "readerUserIds"}


def test_the_admin_api_app_gets_no_secret_and_outputs_its_id(parsed):
    for file in (ADMIN_API, IDENTIFIER_URI_MODULE):
        tree = parsed[file]
        for node in walk(tree):
            if isinstance(node, dict):
                assert not {"passwordCredentials", "keyCredentials"} & set(node), f"{file} gives the app a credential"
        types = {res["type"] for res in tree["resources"].values()}
        assert "Microsoft.Graph/applications/federatedIdentityCredentials" not in types, file
        for name, param in tree["parameters"].items():
            assert "secure" not in json.dumps(param["decorators"], default=str), f"{file} takes a secret: {name}"
    outputs = parsed[ADMIN_API]["outputs"]
    app_symbol = next(name for name, res in parsed[ADMIN_API]["resources"].items()
                      if res["type"] == "Microsoft.Graph/applications")
    assert property_path(outputs["appId"]["value"]) == [app_symbol, "appId"]


def test_the_function_app_gets_the_admin_app_id_and_the_tenant(parsed):
    settings = app_settings(parsed)
    assert is_ref(settings["SIGNUP_ADMIN_APP_ID"], "adminApiAppId")
    assert _is_tenant_id(settings["AZURE_TENANT_ID"]), "AZURE_TENANT_ID must be tenant().tenantId"
    function_app = parsed["modules/function-app.bicep"]["parameters"]["adminApiAppId"]
    assert function_app["type"] == "string"
    main = parsed["main.bicep"]
    assert main["parameters"]["adminApiAppId"]["default"] == "", "empty: the admin API is off until it exists"
    assert is_ref(body(main["modules"]["functionApp"])["params"]["adminApiAppId"], "adminApiAppId")
    example = (INFRA / "main.bicepparam").read_text(encoding="utf-8")
    assert re.search(r"^param adminApiAppId = ''$", example, re.M)
    # A client secret credential stays impossible: the tenant is set, its partners never are.
    assert not {"AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET"} & set(settings)


# --- the admin console's app registration (issue 17) ---------------------------------------------

CONSOLE_MODULE = "modules/admin-console.bicep"


def test_the_console_is_a_single_page_app_with_no_secret_and_the_api_scope(parsed):
    tree = parsed[CONSOLE_MODULE]
    assert "microsoftGraphV1" in tree["extensions"]
    app = the_resource(tree, "Microsoft.Graph/applications")
    assert app["signInAudience"] == "AzureADMyOrg"
    # The `spa` platform: authorization code with PKCE, never a secret or the implicit grant.
    assert is_ref(app["spa"]["redirectUris"], "redirectUris")
    assert "web" not in app and "publicClient" not in app
    for node in walk(tree):
        if isinstance(node, dict):
            assert not {"passwordCredentials", "keyCredentials", "implicitGrantSettings"} & set(node)
    [access] = app["requiredResourceAccess"]
    assert is_ref(access["resourceAppId"], "adminApiAppId")
    assert access["resourceAccess"] == [{"id": "scopeId", "type": "Scope"}]
    # Consent for the tenant to the delegated scope only; roles still come from assignments.
    grant = the_resource(tree, "Microsoft.Graph/oauth2PermissionGrants")
    assert grant["consentType"] == "AllPrincipals"
    assert grant["scope"] == "user_impersonation"
    assert is_ref(grant["resourceId"], "adminApiServicePrincipalId")
    assert property_path(tree["outputs"]["appId"]["value"]) == ["consoleApp", "appId"]


def test_the_console_registration_is_wired_from_the_site_to_the_admin_api(parsed):
    admin = parsed[ADMIN_API]
    module = admin["modules"]["consoleRegistration"]
    assert module["detail"]["path"] == CONSOLE_MODULE
    assert "condition" in module["config"], "no redirect URIs, no console registration"
    assert admin["parameters"]["consoleRedirectUris"]["default"] == []
    params = body(module)["params"]
    assert property_path(params["adminApiAppId"]) == ["adminApi", "appId"]
    assert property_path(params["adminApiServicePrincipalId"]) == ["adminApiServicePrincipal", "id"]
    assert is_ref(params["scopeId"], "scopeId")
    assert "consoleClientId" in admin["outputs"]
    # main.bicep names the console's addresses on the site, both languages, never /admin.
    main = bicep_source_without_comments(INFRA / "main.bicep")
    line = next(line for line in main.splitlines() if line.startswith("output consoleRedirectUris"))
    assert "console/'" in line and "fr/console/'" in line and "/admin" not in line
