# Switchyard — every target runs from a fresh clone with only Go installed;
# tools are Go module tools pinned in tools/go.mod and tools/buf/go.mod.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

BUF := go tool -modfile=tools/buf/go.mod buf
GRPCURL := go tool -modfile=tools/go.mod grpcurl
ADDR ?= :50051
ARGS ?=
BENCHARGS ?=
TMP := .tmp

.PHONY: help
help: ## Describe useful make targets
	@grep -E '^[a-zA-Z_-]+:.*?## .*$$' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "%-16s %s\n", $$1, $$2}'

.PHONY: run
run: build ## Build and start the server on $(ADDR) with embedded defaults
	./bin/switchyard -addr $(ADDR) $(ARGS)

.PHONY: build
build: ## Build bin/switchyard
	go build -o bin/switchyard ./cmd/switchyard

.PHONY: generate
generate: ## Regenerate gen/ from proto/ with buf
	$(BUF) generate

.PHONY: lint
lint: ## buf lint, buf format, gofmt and go vet
	$(BUF) lint
	$(BUF) format --diff --exit-code
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	go vet ./...
	cd bench && go vet ./...

.PHONY: checkgenerate
checkgenerate: generate ## Fail when generated code differs from what is committed
	@test -z "$$(git status --porcelain -- gen)" || { echo "make generate changed gen/; commit the result:"; git status --porcelain -- gen; git diff --stat -- gen; exit 1; }

.PHONY: breaking
breaking: ## buf breaking against the previous commit (skipped on the first one)
	@if git rev-parse -q --verify HEAD~1 >/dev/null; then \
		echo "buf breaking --against .git#ref=HEAD~1"; \
		$(BUF) breaking --against '.git#ref=HEAD~1'; \
	else \
		echo "buf breaking: no previous commit to compare with"; \
	fi

.PHONY: unit
unit: ## go test -race ./... with a pass/fail/skip count
	@mkdir -p $(TMP)
	go test -race -count=1 -v ./... 2>&1 | tee $(TMP)/test.log | grep -E '^(--- |ok|FAIL|panic)' || true
	@pass=$$(grep -c -- '--- PASS' $(TMP)/test.log || true); fail=$$(grep -c -- '--- FAIL' $(TMP)/test.log || true); \
	skip=$$(grep -c -- '--- SKIP' $(TMP)/test.log || true); \
	echo "tests: $$pass passed, $$fail failed, $$skip skipped"; \
	! grep -qE '^(FAIL|panic:)' $(TMP)/test.log

.PHONY: test
test: lint checkgenerate breaking unit ## Every check and test (what CI runs)

.PHONY: bench
bench: ## Switchyard vs a grpc-go reference server, side by side (not part of test)
	@mkdir -p $(TMP)/bench
	go build -o $(TMP)/bench/switchyard ./cmd/switchyard
	cd bench && go build -o ../$(TMP)/bench/ ./cmd/...
	$(TMP)/bench/benchrun -bin $(TMP)/bench $(BENCHARGS)

.PHONY: microbench
microbench: ## Go micro-benchmarks of the call paths, with allocations (see BENCHMARKS.md)
	go test -run '^$$' -bench . -benchmem ./...

.PHONY: clean
clean: ## Remove build output
	rm -rf bin $(TMP)
