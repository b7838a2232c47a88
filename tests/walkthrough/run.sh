#!/usr/bin/env bash
# Runs the README's "Walkthrough with curl" block as written, in a
# throw-away copy of the repository (its data/ and config/ stay there), so
# the walkthrough cannot drift from the API without CI saying so. The block
# starts the server on :8080 and stops it; every call fails loudly.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$root"
git ls-files -z | tar --null -T - -cf - | tar -xf - -C "$work"
# The block: the first ```sh fence after the heading, to its closing fence.
awk '/^## Walkthrough with curl/{on=1} on&&/^```sh/{inblock=1; next} inblock&&/^```/{exit} inblock{print}' README.md >"$work/walkthrough.sh"
[ -s "$work/walkthrough.sh" ] || { echo "README has no walkthrough block"; exit 1; }
if curl -fs -o /dev/null localhost:8080/healthz 2>/dev/null; then
  echo "something already answers on :8080; the walkthrough needs the port"; exit 1
fi
cd "$work"
# As a user would run it: the defaults (SQLite, in-memory limits, port 8080).
env -u PORT -u DATABASE_URL -u REDIS_URL -u APP_ENV bash walkthrough.sh 2>&1 | tee walkthrough.log
grep -q '^202 POST .*/auth/register' walkthrough.log && grep -q '^204 POST .*/auth/logout' walkthrough.log &&
  grep -q '^walkthrough done' walkthrough.log || { echo "the walkthrough did not reach its end"; exit 1; }
if curl -fs -o /dev/null localhost:8080/healthz 2>/dev/null; then echo "the walkthrough left its server running"; exit 1; fi
echo "the README walkthrough works as written"
