#!/usr/bin/env bash
# End-to-end checks against a real, running Tollgate: builds the binary,
# starts it on a free loopback port with its own SQLite file and keys, makes
# an admin with `tollgate user create` for the Swagger UI check, then
#   1. lints the served OpenAPI document with Redocly,
#   2. renders every Mermaid diagram in the guides (mermaid-cli),
#   3. drives Swagger UI in headless Chromium (swagger-ui.mjs), signs in
#      through the development provider there (sign-in.mjs), uses the
#      example front end on a cookie session (example-app.mjs), and
#   4. runs docs/postman_collection.json with newman,
# steps 3 and 4 through Prism, a proxy that validates every answer against
# the served OpenAPI document: any answer outside it fails the run; and
#   5. generates a Go client from /openapi.json with oapi-codegen (default
#      settings) and compiles it.
# Needs Node.js and Chromium (CHROMIUM, default /usr/bin/chromium); .ci/run
# installs both. Artifacts (screenshot, server log) go to tests/artifacts/.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
artifacts="$root/tests/artifacts"
mkdir -p "$artifacts"
work="$(mktemp -d)"
pid=""
prism=""
cleanup() {
  if [ -n "$prism" ]; then kill "$prism" 2>/dev/null || true; wait "$prism" 2>/dev/null || true; fi
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

cd "$here"
[ -d node_modules ] || PUPPETEER_SKIP_DOWNLOAD=1 npm ci --no-audit --no-fund
export CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"

port="$(node -e "const s=require('net').createServer();s.listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")"
base="http://127.0.0.1:$port"
# Prism's port is chosen now: the collection's cookie session comes from its
# origin, which the server must allow.
pport="$(node -e "const s=require('net').createServer();s.listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")"
export CORS_ALLOWED_ORIGINS="http://127.0.0.1:$pport"
export PORT="$port" APP_ENV=development APP_BASE_URL="$base" SQLITE_PATH="$work/tollgate.db" \
  JWT_PRIVATE_KEY_FILE="$work/jwt-private.pem" JWT_PUBLIC_KEY_FILE="$work/jwt-public.pem" API_KEY_PEPPER_FILE="$work/api-key-pepper" \
  AUDIT_KEY_FILE="$work/audit-key" MFA_KEY_FILE="$work/mfa-key" \
  BCRYPT_COST=10 SWAGGER_ENABLED=true DATABASE_URL= REDIS_URL= RATE_LIMIT_ENABLED=true

(cd "$root" && go build -o "$work/tollgate" .)
"$work/tollgate" keys generate >/dev/null
admin_email="admin-e2e@example.com" password="Correct-Horse-9"
"$work/tollgate" user create --email "$admin_email" --password "$password" --role admin --tier paid

# wait_up URL PID LOG: until URL answers, or fail with LOG if PID exits or 20 s pass.
wait_up() {
  for _ in $(seq 1 200); do
    if curl -fsS "$1" >/dev/null 2>&1; then return 0; fi
    if ! kill -0 "$2" 2>/dev/null; then echo "$1: its process exited:"; cat "$3"; exit 1; fi
    sleep 0.1
  done
  curl -fsS "$1" >/dev/null
}

"$work/tollgate" serve >"$artifacts/server.log" 2>&1 &
pid=$!
wait_up "$base/readyz" "$pid" "$artifacts/server.log"

echo "== OpenAPI 3 document through an independent validator (Redocly)"
curl -fsS "$base/openapi.json" -o "$work/openapi.json"
npx --no-install redocly lint "$work/openapi.json" --format=summary

echo "== Mermaid diagrams in the guides parse and render"
cat >"$work/puppeteer.json" <<JSON
{"executablePath": "$CHROMIUM", "args": ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync"]}
JSON
for md in "$root"/README.md "$root"/docs/*.md; do
  grep -q '^```mermaid' "$md" || continue
  if ! npx --no-install mmdc -p "$work/puppeteer.json" -i "$md" -o "$work/$(basename "$md")" -q >"$work/mmdc.log" 2>&1; then
    echo "$md: a diagram does not render:"; grep -v '^\s*at ' "$work/mmdc.log"; exit 1
  fi
  echo "ok $(basename "$md")"
done

echo "== Prism validating proxy in front of the server"
# Every answer of the browser and Postman steps below is checked against the
# document. Requests are not (the collection sends bad input on purpose).
"$here/node_modules/.bin/prism" proxy "$work/openapi.json" "$base" --host 127.0.0.1 --port "$pport" >"$artifacts/prism.log" 2>&1 &
prism=$!
proxied="http://127.0.0.1:$pport"
wait_up "$proxied/healthz" "$prism" "$artifacts/prism.log"

echo "== Swagger UI in headless Chromium"
BASE_URL="$proxied" EMAIL="$admin_email" PASSWORD="$password" ARTIFACTS="$artifacts" node swagger-ui.mjs

echo "== sign-in with a provider in headless Chromium (the development provider)"
BASE_URL="$base" node sign-in.mjs

echo "== the example front end in headless Chromium (a cookie session)"
BASE_URL="$base" node example-app.mjs

# Twice in a row on the same server: the collection must be re-runnable
# (nothing it makes collides, and it leaves the limits usable) and needs
# nothing but the base URL (it makes its own users through /dev/ routes).
for run in 1 2; do
  echo "== Postman collection through newman (run $run of 2)"
  npx --no-install newman run "${COLLECTION:-$root/docs/postman_collection.json}" --bail --color off \
    --env-var "baseUrl=$proxied" --reporters cli
done

echo "== every answer above as the document says (Prism)"
# Prism logs a violation per answer that breaks the document: response ones
# fail the run.
if grep -E "Violation: response" "$artifacts/prism.log" >"$work/violations.log"; then
  echo "$(wc -l <"$work/violations.log") answers outside the OpenAPI document:"; sort "$work/violations.log" | uniq -c | sort -rn | head -20; exit 1
fi
grep -c "Request received" "$artifacts/prism.log" | sed 's/^/answers validated: /'

echo "== a Go client generated from /openapi.json compiles (oapi-codegen, default settings)"
OAPI_CODEGEN_VERSION=v2.8.2
mkdir -p "$work/client"
cat >"$work/client/oapi-codegen.yaml" <<YAML
package: client
generate:
  models: true
  client: true
output: client.gen.go
YAML
(cd "$work/client" && go run "github.com/oapi-codegen/oapi-codegen/v2/cmd/oapi-codegen@$OAPI_CODEGEN_VERSION" -config oapi-codegen.yaml "$work/openapi.json" &&
  go mod init example.com/tollgateclient >/dev/null 2>&1 && go mod tidy >/dev/null 2>&1 && go vet ./... && echo "the generated client compiles")
