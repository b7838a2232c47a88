# Shortcuts for the commands the README and CONTRIBUTING.md describe.
# Only Go is needed for run, test, docs and bench; test-pg needs PostgreSQL
# and Redis (TEST_DATABASE_URL and TEST_REDIS_URL, defaults below); compose
# needs Docker.

TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/test?sslmode=disable
TEST_REDIS_URL ?= redis://127.0.0.1:6379/0

.PHONY: run test test-pg lint docs bench bench-suite guide compose ci

run: ## serve on :8080 (SQLite, in-memory limits, development keys)
	go run .

test: ## the suite on SQLite
	go test ./...

test-pg: ## the suite on PostgreSQL and Redis, with the race detector
	TEST_DATABASE_URL='$(TEST_DATABASE_URL)' TEST_REDIS_URL='$(TEST_REDIS_URL)' go test -race -count=1 ./...

GOLANGCI_LINT_VERSION ?= v2.15.0

lint: ## gofmt, go vet and golangci-lint (.golangci.yml), as CI runs them
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change: $$out"; exit 1; fi
	go vet ./...
	go run github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION) run ./...

docs: ## regenerate docs/ from the annotations
	go generate ./docs

bench: ## benchmarks of the hot path (Redis and PostgreSQL ones need the TEST_ variables)
	go test -run '^$$' -bench . -benchmem ./tests

bench-suite: ## wall time of the whole SQLite suite, warm (built once first), three runs
	@go test -count=1 ./... >/dev/null
	@for i in 1 2 3; do bash -c 'TIMEFORMAT="go test -count=1 ./...: %R s"; time go test -count=1 ./... >/tmp/bench-suite.log 2>&1' || { grep -A20 -- '--- FAIL' /tmp/bench-suite.log; exit 1; }; done

guide: ## apply each guide (make it yours, adding an endpoint, removing the example) to a copy of the repository and run the suite there
	tests/guide/run.sh docs/make-it-yours.md
	tests/guide/run.sh docs/adding-an-endpoint.md
	tests/guide/run.sh docs/removing-the-example.md

compose: ## the whole stack in Docker (API :8080, Mailpit :8025)
	docker compose up --build

ci: ## everything CI runs (needs PostgreSQL, Redis, Node.js; installs Chromium)
	bash .ci/run
