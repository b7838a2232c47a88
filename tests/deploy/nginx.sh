#!/usr/bin/env bash
# The nginx block of docs/deploying.md, as written but for its addresses and
# certificate paths: nginx -t accepts it, then two instances serve behind
# it and registrations made through it with curl (which hangs up as soon as
# it has the answer) exist the moment their 202 arrives. Uses PostgreSQL
# (TEST_DATABASE_URL: a fresh database, dropped after) and Redis
# (TEST_REDIS_URL, under a prefix of its own) when set, else one SQLite file.
# Needs nginx and openssl (.ci/run installs nginx from Debian's packages).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
work="$(mktemp -d)"
pids=()
db=""
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ -n "$db" ]; then psql -q "$TEST_DATABASE_URL" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }

cd "$root"
go build -o "$work/tollgate" .
awk '/^```nginx/{on=1; next} on&&/^```/{exit} on{print}' docs/deploying.md >"$work/block.conf"
[ -s "$work/block.conf" ] || { echo "docs/deploying.md has no nginx block"; exit 1; }
p1=$(free_port) p2=$(free_port) np=$(free_port)
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=api.example.com \
  -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
sed -e "s#10.0.1.11:8080#127.0.0.1:$p1#" -e "s#10.0.1.12:8080#127.0.0.1:$p2#" -e "s#listen 443 ssl#listen 127.0.0.1:$np ssl#" \
  -e "s#/etc/ssl/certs/api.example.com.pem#$work/cert.pem#" -e "s#/etc/ssl/private/api.example.com.key#$work/key.pem#" \
  "$work/block.conf" >"$work/site.conf"
cat >"$work/nginx.conf" <<CONF
pid $work/nginx.pid;
error_log $work/nginx-error.log;
events {}
http {
    access_log $work/nginx-access.log;
    client_body_temp_path $work/body;
    proxy_temp_path $work/proxy;
    include $work/site.conf;
}
CONF
nginx -t -c "$work/nginx.conf"

export APP_ENV=development APP_BASE_URL="https://api.example.com" TRUSTED_PROXIES=127.0.0.1/32 LOG_LEVEL=warn \
  JWT_PRIVATE_KEY_FILE="$work/private.pem" JWT_PUBLIC_KEY_FILE="$work/public.pem" API_KEY_PEPPER_FILE="$work/pepper" \
  AUDIT_KEY_FILE="$work/audit-key" MFA_KEY_FILE="$work/mfa-key" BCRYPT_COST=10 DATABASE_URL= REDIS_URL= SQLITE_PATH="$work/app.db"
if [ -n "${TEST_DATABASE_URL:-}" ]; then
  db="nginx_$(date +%s)_$$"
  psql -q "$TEST_DATABASE_URL" -c "CREATE DATABASE $db" >/dev/null
  DATABASE_URL="$(python3 -c 'import sys,urllib.parse as u;p=u.urlparse(sys.argv[1]);print(p._replace(path="/"+sys.argv[2]).geturl())' "$TEST_DATABASE_URL" "$db")"
  export DATABASE_URL
fi
if [ -n "${TEST_REDIS_URL:-}" ]; then export REDIS_URL="$TEST_REDIS_URL" RATE_LIMIT_KEY_PREFIX="nginx-$$-$(date +%s):"; fi
"$work/tollgate" keys generate >/dev/null
"$work/tollgate" migrate up >/dev/null
for port in "$p1" "$p2"; do
  PORT=$port "$work/tollgate" serve >>"$work/server.log" 2>&1 &
  pids+=($!)
done
nginx -c "$work/nginx.conf" -g 'daemon off;' &
pids+=($!)
base="https://127.0.0.1:$np"
for _ in $(seq 100); do curl -kfs -o /dev/null "$base/readyz" && break; sleep 0.1; done
for port in "$p1" "$p2"; do curl -fs -o /dev/null "http://127.0.0.1:$port/readyz" || { cat "$work/server.log"; exit 1; }; done

n=10
for i in $(seq $n); do
  email="nginx-$i-$$@example.com"
  status=$(curl -ks -o /dev/null -w '%{http_code}' "$base/auth/register" -H 'Content-Type: application/json' \
    -d "{\"email\":\"$email\",\"password\":\"Correct-Horse-9\"}")
  [ "$status" = 202 ] || { echo "register $email through nginx: $status"; cat "$work/server.log"; exit 1; }
  # The account exists now: its password matches and it is not verified.
  login=$(curl -ks -w ' %{http_code}' "$base/auth/login" -H 'Content-Type: application/json' \
    -d "{\"email\":\"$email\",\"password\":\"Correct-Horse-9\"}")
  case "$login" in *email_not_verified*403) ;; *) echo "login right after the 202 for $email: $login"; exit 1 ;; esac
done
# Upstream keep-alive: nginx reused its connections to the instances.
conns=$(ss -tn state established "( dport = :$p1 or dport = :$p2 )" | tail -n +2 | wc -l)
echo "nginx -t passed; $n of $n registrations through nginx stored before their 202 ($conns upstream connections open)"
[ "$conns" -ge 1 ] || { echo "no kept-alive upstream connection"; exit 1; }
