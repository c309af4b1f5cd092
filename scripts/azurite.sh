#!/usr/bin/env bash
# azurite.sh — run Azurite, the Azure Storage emulator, for local development.
#
# Usage:
#     scripts/azurite.sh                 # data kept on disk in ./.azurite (gitignored)
#     scripts/azurite.sh --in-memory     # nothing written to disk; data gone when it stops
#     scripts/azurite.sh -- --silent     # anything after "--" goes to azurite as is
#     scripts/azurite.sh --connection-string   # print the app's AzureWebJobsStorage for these ports
#     scripts/azurite.sh --check-ports   # only check that the three ports are free
#
# Settings (environment):
#     AZURITE_BLOB_PORT   blob service port   (default 10000)
#     AZURITE_QUEUE_PORT  queue service port  (default 10001)
#     AZURITE_TABLE_PORT  table service port  (default 10002)
#     AZURITE_LOCATION    on-disk data folder (default <repo>/.azurite)
#
# With the default ports the app's setting is simply AzureWebJobsStorage=UseDevelopmentStorage=true
# (which always means 10000-10002); with other ports it is a connection string naming each
# endpoint, printed at start and by --connection-string (scripts/run uses it).
#
# Before starting, the three ports are checked (scripts/ports.sh): one already taken stops the
# script with the process that holds it, exit 1.
#
# Always, whatever is passed after "--":
#   - loopback only (127.0.0.1): the emulator accepts the well-known development key, so it
#     must never be reachable from another machine;
#   - --disableTelemetry: without it Azurite sends usage telemetry and probes a cloud metadata
#     address; that traffic must never leave this machine.
# Azurite is the version pinned in package.json / package-lock.json; if node_modules does not
# have it yet, `npm ci` installs it first. Newer Azure SDKs (for example Python
# azure-storage-queue 12.18+) send an API version this Azurite refuses: pin the client's
# api_version, or pass `-- --skipApiVersionCheck`.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
azurite="$repo_root/node_modules/.bin/azurite"

blob_port="${AZURITE_BLOB_PORT:-10000}"
queue_port="${AZURITE_QUEUE_PORT:-10001}"
table_port="${AZURITE_TABLE_PORT:-10002}"
location="${AZURITE_LOCATION:-$repo_root/.azurite}"
in_memory=false
extra_args=()

# The app's AzureWebJobsStorage for Azurite on these ports.
connection_string() {
    if [[ "$blob_port/$queue_port/$table_port" == "10000/10001/10002" ]]; then
        echo "UseDevelopmentStorage=true"
        return
    fi
    # Azurite's well-known development account and key (public, in Microsoft's documents).
    local account=devstoreaccount1
    local key="Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
    echo "DefaultEndpointsProtocol=http;AccountName=$account;AccountKey=$key;BlobEndpoint=http://127.0.0.1:$blob_port/$account;QueueEndpoint=http://127.0.0.1:$queue_port/$account;TableEndpoint=http://127.0.0.1:$table_port/$account;"
}

check_ports() {
    "$repo_root/scripts/ports.sh" "azurite-blob=$blob_port" "azurite-queue=$queue_port" "azurite-table=$table_port"
}

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; }

while (($#)); do
    case "$1" in
        --in-memory) in_memory=true ;;
        -h | --help) usage; exit 0 ;;
        --connection-string) connection_string; exit 0 ;;
        --check-ports) check_ports; exit ;;
        --) shift; extra_args=("$@"); break ;;
        *) echo "azurite.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
    esac
    shift
done

for arg in "${extra_args[@]+"${extra_args[@]}"}"; do
    case "$arg" in
        --blobHost* | --queueHost* | --tableHost*)
            echo "azurite.sh: '$arg' refused: Azurite stays on 127.0.0.1" >&2
            exit 2
            ;;
    esac
done

check_ports || exit

if [[ ! -x "$azurite" ]]; then
    echo "azurite.sh: Azurite is not installed yet; running npm ci ..." >&2
    (cd "$repo_root" && npm ci --no-audit --no-fund)
fi

args=(
    --disableTelemetry
    --blobHost 127.0.0.1 --blobPort "$blob_port"
    --queueHost 127.0.0.1 --queuePort "$queue_port"
    --tableHost 127.0.0.1 --tablePort "$table_port"
)
if $in_memory; then
    # Azurite refuses --location together with --inMemoryPersistence.
    args+=(--inMemoryPersistence)
else
    mkdir -p "$location"
    args+=(--location "$location")
fi

if [[ "$blob_port/$queue_port/$table_port" != "10000/10001/10002" ]]; then
    echo "azurite.sh: AzureWebJobsStorage=$(connection_string)" >&2
fi

exec "$azurite" "${args[@]}" "${extra_args[@]+"${extra_args[@]}"}"
