#!/usr/bin/env bash
# Follows a guide (docs/adding-an-endpoint.md unless another is named) to
# the letter in a throw-away copy of the repository (tests/guide/main.go
# applies its code blocks), then regenerates the docs and runs gofmt, vet
# and the suite there (SQLite: each guide's promise is "go test ./...
# passes"). A guide can no longer drift from the code without CI saying so.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$root"
git ls-files -z | tar --null -T - -cf - | tar -xf - -C "$work"
guide="${1:-docs/adding-an-endpoint.md}"
# A guide promises a machine with only Go: its own go test runs on SQLite.
unset TEST_DATABASE_URL TEST_REDIS_URL
go run ./tests/guide "$guide" "$work"
cd "$work"
# The guides' last steps: regenerate, format, vet, test.
go generate ./docs >/dev/null
gofmt -w .
go vet ./...
go test -count=1 ./...
echo "$guide works as written"
