#!/usr/bin/env bash
# Register timing: 20 registrations each of a new, an unverified and a
# verified address at bcrypt cost 12; passes when the three medians are
# within 10% of each other (the answer reveals no account by its timing).
# Runs on SQLite by default; DATABASE_URL (a database of its own) and
# REDIS_URL in the environment put the server there.
source "$(dirname "$0")/lib.sh"
go build -o "$work/registertiming" ./tests/load/registertiming
port=$(free_port)
export PORT="$port" BCRYPT_COST="${BCRYPT_COST:-12}" RATE_LIMIT_REGISTER=1000000/1m RATE_LIMIT_PUBLIC=1000000/1m
verified="timing-verified-$$@example.com"
"$work/tollgate" user create --email "$verified" --password Timing-Password-1 >/dev/null
start_bg "$work/server.log" "$work/tollgate" serve
wait_ready "http://127.0.0.1:$port/healthz" "$work/server.log"
"$work/registertiming" -url "http://127.0.0.1:$port" -verified "$verified" -n "${N:-20}" -max-spread "${MAX_SPREAD:-0.10}"
