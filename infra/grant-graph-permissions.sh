#!/usr/bin/env bash
# grant-graph-permissions.sh — give the Function App's managed identity its Microsoft Graph
# application permissions with the Azure CLI: the same grants as graph-permissions.bicep, for a
# tenant administrator who would rather run a script than a Bicep deployment.
#
# Usage:
#     infra/grant-graph-permissions.sh PRINCIPAL_ID            grant what is missing
#     infra/grant-graph-permissions.sh PRINCIPAL_ID --check    report only; exit 1 if any is missing
#
#   PRINCIPAL_ID  object id of the app's system-assigned identity (main.bicep output principalId,
#                 or: az functionapp identity show -g <rg> -n <app> --query principalId -o tsv)
#
# The permissions are exactly User.Invite.All, GroupMember.ReadWrite.All and User.Read.All (the
# last only to look a guest up after an invitation whose answer was lost; see
# graph-permissions.bicep). Their app role ids
# are looked up by value in the Microsoft Graph service principal's appRoles (well-known appId
# 00000003-0000-0000-c000-000000000000), never copied by hand. Granting an app role to a
# service principal is the admin consent for an application permission, so the signed-in
# account (az login) needs AppRoleAssignment.ReadWrite.All + Application.Read.All, e.g. the
# Privileged Role Administrator role. Idempotent: granted permissions are left alone. Any other
# Microsoft Graph permission the identity holds is reported, as it should not be there.
# API: https://learn.microsoft.com/graph/api/serviceprincipal-post-approleassignments
set -euo pipefail

GRAPH_APP_ID=00000003-0000-0000-c000-000000000000
GRAPH_URL="${GRAPH_URL:-https://graph.microsoft.com}"
PERMISSIONS=(User.Invite.All GroupMember.ReadWrite.All User.Read.All)

log() { printf 'grant-graph-permissions: %s\n' "$*" >&2; }
usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; }

principal=""
check=false
for arg in "$@"; do
    case "$arg" in
        --check) check=true ;;
        -h | --help) usage; exit 0 ;;
        -*) log "unknown option '$arg' (see --help)"; exit 2 ;;
        *) principal="$arg" ;;
    esac
done
if [[ ! "$principal" =~ ^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$ ]]; then
    log "PRINCIPAL_ID must be the identity's object id (a GUID), got '${principal}'"
    exit 2
fi

graph_sp="$(az ad sp show --id "$GRAPH_APP_ID" --query id -o tsv)"
[[ -n "$graph_sp" ]] || { log "Microsoft Graph service principal not found in this tenant"; exit 1; }

assignments_uri="$GRAPH_URL/v1.0/servicePrincipals/$principal/appRoleAssignments"
granted="$(az rest --method get --uri "$assignments_uri" \
    --query "value[?resourceId=='$graph_sp'].appRoleId" -o tsv)"

missing=0
wanted_ids=()
for permission in "${PERMISSIONS[@]}"; do
    role_id="$(az ad sp show --id "$GRAPH_APP_ID" \
        --query "appRoles[?value=='$permission' && contains(allowedMemberTypes, 'Application')].id | [0]" -o tsv)"
    [[ -n "$role_id" ]] || { log "$permission: no such application permission on Microsoft Graph"; exit 1; }
    wanted_ids+=("$role_id")
    if grep -qix "$role_id" <<<"$granted"; then
        log "$permission ($role_id): granted"
    elif $check; then
        log "$permission ($role_id): MISSING"
        missing=1
    else
        az rest --method post --uri "$assignments_uri" --headers "Content-Type=application/json" \
            --body "{\"principalId\":\"$principal\",\"resourceId\":\"$graph_sp\",\"appRoleId\":\"$role_id\"}" \
            -o none
        log "$permission ($role_id): granted now"
    fi
done

while read -r role_id; do
    [[ -n "$role_id" ]] || continue
    known=false
    for wanted in "${wanted_ids[@]}"; do
        [[ "${role_id,,}" == "${wanted,,}" ]] && known=true
    done
    $known || log "WARNING: the identity also holds Microsoft Graph app role $role_id, which b2b-signup does not need; remove it"
done <<<"$granted"

exit "$missing"
