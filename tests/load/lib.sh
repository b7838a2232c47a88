# Shared by the load scripts (source it): a scratch directory removed at
# exit with every process started through start_bg, the binary built into
# it, free ports, and the variables every instance takes (development
# mode, keys and secrets in the scratch directory, SQLite there unless
# DATABASE_URL says otherwise).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
work="$(mktemp -d)"
pids=()
stop_all() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; pids=(); }
trap 'stop_all; rm -rf "$work"' EXIT
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
# start_bg LOG CMD...: runs CMD in the background, stopped at exit.
start_bg() { local log=$1; shift; "$@" >>"$log" 2>&1 & pids+=($!); }
# wait_ready URL LOG: until URL answers, or fail with the log.
wait_ready() {
  for _ in $(seq 100); do curl -fs -o /dev/null "$1" && return 0; sleep 0.1; done
  echo "no answer from $1:"; cat "$2"; exit 1
}
cd "$root"
go build -o "$work/tollgate" .
export APP_ENV=development LOG_LEVEL=warn SQLITE_PATH="$work/app.db" DATABASE_URL="${DATABASE_URL:-}" REDIS_URL="${REDIS_URL:-}" \
  JWT_PRIVATE_KEY_FILE="$work/private.pem" JWT_PUBLIC_KEY_FILE="$work/public.pem" API_KEY_PEPPER_FILE="$work/pepper" \
  AUDIT_KEY_FILE="$work/audit-key" MFA_KEY_FILE="$work/mfa-key"
