#!/usr/bin/env bash
# Register timing: 20 registrations each of a new, an unverified and a
# verified address at bcrypt cost 12; passes when the three medians are
# within 10% of each other (the answer reveals no account by its timing).
# Runs on SQLite by default; DATABASE_URL (a database of its own) and
# REDIS_URL in the environment put the server there.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
work="$(mktemp -d)"
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
cd "$root"
go build -o "$work/tollgate" .
go build -o "$work/registertiming" ./tests/load/registertiming
port="$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')"
export PORT="$port" APP_ENV=development SQLITE_PATH="$work/app.db" DATABASE_URL="${DATABASE_URL:-}" REDIS_URL="${REDIS_URL:-}" \
  JWT_PRIVATE_KEY_FILE="$work/private.pem" JWT_PUBLIC_KEY_FILE="$work/public.pem" LOG_LEVEL=warn \
  API_KEY_PEPPER_FILE="$work/pepper" AUDIT_KEY_FILE="$work/audit-key" MFA_KEY_FILE="$work/mfa-key" \
  BCRYPT_COST="${BCRYPT_COST:-12}" RATE_LIMIT_REGISTER=1000000/1m RATE_LIMIT_PUBLIC=1000000/1m
verified="timing-verified-$$@example.com"
"$work/tollgate" user create --email "$verified" --password Timing-Password-1 >/dev/null
"$work/tollgate" serve >"$work/server.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do curl -fs -o /dev/null "http://127.0.0.1:$port/healthz" && break; sleep 0.1; done
"$work/registertiming" -url "http://127.0.0.1:$port" -verified "$verified" -n "${N:-20}" -max-spread "${MAX_SPREAD:-0.10}"
