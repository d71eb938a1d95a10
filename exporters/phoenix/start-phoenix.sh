#!/usr/bin/env bash
# Start Arize Phoenix on loopback as an OTLP receiver for agentsignals, fully offline.
#
#   bash exporters/phoenix/start-phoenix.sh            # UI + OTLP/HTTP on http://127.0.0.1:6006
#
# Phoenix lives in its own virtualenv (it pulls ~150 packages): $AGENTSIGNALS_PHOENIX_VENV,
# default <repo>/.venv-phoenix. Create it once with
#   python3 -m venv .venv-phoenix && .venv-phoenix/bin/pip install arize-phoenix
# Every PHOENIX_* variable below can be overridden from the environment.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="${AGENTSIGNALS_PHOENIX_VENV:-$root/.venv-phoenix}"
if [[ ! -x "$venv/bin/phoenix" ]]; then
    echo "no Phoenix at $venv/bin/phoenix; create it with:" >&2
    echo "  python3 -m venv $venv && $venv/bin/pip install arize-phoenix" >&2
    exit 2
fi
export PHOENIX_HOST="${PHOENIX_HOST:-127.0.0.1}"
export PHOENIX_PORT="${PHOENIX_PORT:-6006}"
# Phoenix binds its gRPC receiver on every interface whatever PHOENIX_HOST says, so the default
# here is an unusual port rather than 4317; send over OTLP/HTTP (PHOENIX_PORT) instead.
export PHOENIX_GRPC_PORT="${PHOENIX_GRPC_PORT:-46317}"
export PHOENIX_WORKING_DIR="${PHOENIX_WORKING_DIR:-$root/agentsignals-output/phoenix}"
export PHOENIX_TELEMETRY_ENABLED="${PHOENIX_TELEMETRY_ENABLED:-false}"
export PHOENIX_ALLOW_EXTERNAL_RESOURCES="${PHOENIX_ALLOW_EXTERNAL_RESOURCES:-false}"
mkdir -p "$PHOENIX_WORKING_DIR"
exec "$venv/bin/phoenix" serve
