#!/usr/bin/env bash
# Login storm: 16 concurrent logins at bcrypt cost 12 while GET /public/status
# is probed every 10 ms. Passes when the probe's p99 stays under 100 ms, every
# login ends in 200 or 503 with Retry-After, under 5% answer 503, and the
# logins served per second reach 90% of the hash slots' bcrypt ceiling
# (measured here first). A load script, not a unit test: run it on the
# machine you deploy to (it needs only Go); CI runs it.
#   tests/load/login-storm.sh                       # the defaults
#   LOGINS=64 tests/load/login-storm.sh             # a bigger storm: more 503s, the probe still fast
#   PASSWORD_HASH_CONCURRENCY=64 tests/load/login-storm.sh   # no bound: see the difference
# Extra variables in the environment reach the server (e.g. PASSWORD_HASH_MAX_WAIT).
source "$(dirname "$0")/lib.sh"
go build -o "$work/loginstorm" ./tests/load/loginstorm
port=$(free_port)
# The limits stay on but out of the way: this measures hashing, not limits.
export PORT="$port" BCRYPT_COST="${BCRYPT_COST:-12}" RATE_LIMIT_LOGIN_IP=1000000/1m RATE_LIMIT_PUBLIC=1000000/1m
"$work/tollgate" user create --email storm@example.com --password Storm-Password-1 >/dev/null
start_bg "$work/server.log" "$work/tollgate" serve
wait_ready "http://127.0.0.1:$port/healthz" "$work/server.log"
"$work/loginstorm" -url "http://127.0.0.1:$port" -email storm@example.com -password Storm-Password-1 \
  -logins "${LOGINS:-16}" -duration "${DURATION:-15s}" -max-p99 "${MAX_P99:-100ms}" \
  -cost "${BCRYPT_COST:-12}" -slots "${PASSWORD_HASH_CONCURRENCY:-$(nproc)}" -max-busy "${MAX_BUSY:-0.05}"
