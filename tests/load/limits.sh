#!/usr/bin/env bash
# Limits under load, with the default settings: three instances on one
# Redis; bursts of 150 concurrent requests (30 at a time) from one client IP
# spread over them, while a second client keeps the CPU busy on /healthz.
# Passes when every burst of RUNS x 10 admits exactly 100 (RATE_LIMIT_PUBLIC's
# default), then when, with a private Redis killed mid-window, the
# deployment stays within the documented bound (README, "When Redis is slow
# or fails"). A load script, not a unit test: CI runs it (.ci/run).
#   REDIS_URL    the shared Redis (default redis://127.0.0.1:6379/0; keys under a prefix of this run's)
#   RUNS         runs of 10 bursts (default 10)
source "$(dirname "$0")/lib.sh"
go build -o "$work/limits" ./tests/load/limits
# Each instance has a SQLite file of its own (the limited route reads no
# database); keys and secrets are shared.
export TRUSTED_PROXIES=127.0.0.1/32 DATABASE_URL=
SQLITE_PATH="$work/keys.db" "$work/tollgate" keys generate >/dev/null

# start_instances REDIS_URL PREFIX: three instances; sets urls.
start_instances() {
  urls=""
  for i in 1 2 3; do
    local port; port=$(free_port)
    PORT=$port SQLITE_PATH="$work/app-$i-$2.db" REDIS_URL="$1" RATE_LIMIT_KEY_PREFIX="$2" \
      start_bg "$work/server-$i.log" "$work/tollgate" serve
    urls="${urls:+$urls,}http://127.0.0.1:$port"
  done
  for i in 1 2 3; do
    wait_ready "$(echo "$urls" | cut -d, -f$i)/readyz" "$work/server-$i.log"
  done
  sleep 2 # two heartbeats: every instance has seen the others
}

echo "== three instances on one Redis, CPU busy: every burst exactly at the limit"
start_instances "${REDIS_URL:-redis://127.0.0.1:6379/0}" "load-$$-$(date +%s):"
for run in $(seq "${RUNS:-10}"); do
  echo -n "run $run: "
  "$work/limits" -urls "$urls" -bursts 10 -block "$run"
done
if grep -q "rate limit store unavailable" "$work"/server-*.log; then
  echo "an instance left Redis under load:"; grep -h "unavailable" "$work"/server-*.log | head -5; exit 1
fi
stop_all

echo "== Redis killed mid-window: the deployment within the documented bound"
rport=$(free_port)
start_bg "$work/redis.log" redis-server --port "$rport" --bind 127.0.0.1 --save "" --appendonly no
rpid=${pids[-1]}
for _ in $(seq 100); do redis-cli -p "$rport" ping 2>/dev/null | grep -q PONG && break; sleep 0.05; done
start_instances "redis://127.0.0.1:$rport/0" "outage-$$:"
"$work/limits" -urls "$urls" -kill-pid "$rpid"
