#!/usr/bin/env bash
# Follows docs/adding-an-endpoint.md to the letter in a throw-away copy of the
# repository (tests/guide/main.go applies its code blocks), then regenerates
# the docs and runs gofmt, vet and the suite there (SQLite: the guide's
# promise is "go test ./... passes"). The guide can no longer drift from the
# code without CI saying so.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$root"
git ls-files -z | tar --null -T - -cf - | tar -xf - -C "$work"
go run ./tests/guide "$work"
cd "$work"
# Steps 6 and 8 of the guide.
go generate ./docs >/dev/null
gofmt -w .
go vet ./...
env -u TEST_DATABASE_URL -u TEST_REDIS_URL go test -count=1 ./...
echo "the guide works as written"
