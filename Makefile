# Switchyard. `make run` and `make build` need only Go (1.21 or newer; see
# GOTOOLCHAIN below); Go tools are module tools pinned in tools/go.mod and
# tools/buf/go.mod. `make test` also needs the Debian packages in
# DEB_PACKAGES (`make deps` installs them; CI calls it).
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c

# Every go command here runs on the toolchain go.mod's toolchain line names
# (Go 1.27.3: Go 1.26.8's net/http, crypto/tls, crypto/x509 and
# html/template have published vulnerabilities this binary reaches). The go
# command fetches it once through the module proxy (about 76 MB); any Go
# from 1.21 on can start it, whatever its own GOTOOLCHAIN setting.
export GOTOOLCHAIN := $(shell sed -n 's/^toolchain //p' go.mod)
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

BUF := go tool -modfile=tools/buf/go.mod buf
GRPCURL := go tool -modfile=tools/go.mod grpcurl
ADDR ?= :50051
ARGS ?=
BENCHARGS ?=
TMP := .tmp
# Every proto file, with comments, as server reflection describes them.
REFLECTION_IMAGE := internal/reflection/files.binpb

# Variables whose values `make help` prints in place of $(NAME).
HELP_VARS := ADDR ARGS FUZZTIME SOAK_DURATION SOAK_CLIENTS

.PHONY: help
help: ## Describe useful make targets
	@grep -E '^[a-zA-Z0-9_-]+:.*?## .*$$' $(MAKEFILE_LIST) | sed $(foreach v,$(HELP_VARS),-e 's|$$($v)|$($v)|g') | \
		awk 'BEGIN {FS = ":.*?## "}; {printf "%-16s %s\n", $$1, $$2}'

# What `make test` needs beyond Go, git and node/npm, as Debian packages: one
# list, installed by `make deps` here and in CI (.ci/run).
#   postgresql: server binaries for the store tests' private servers
#   chromium: the browser tests; curl: the e2e suite; gcc: cgo for -race
#   nginx: the proxy of make test-scale and nginx -t of deploy/nginx
#   systemd: systemd-analyze verify of deploy/systemd (make deploy-check)
DEB_PACKAGES := postgresql chromium curl gcc libc6-dev nginx systemd

.PHONY: deps
deps: ## Install the Debian packages `make test` needs (sudo or root; apt)
	@missing=$$(for p in $(DEB_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -z "$$missing" ]; then echo "deps: all of $(DEB_PACKAGES) installed"; exit 0; fi; \
	echo "deps: installing $$missing"; \
	sudo=; [ "$$(id -u)" = 0 ] || sudo=sudo; \
	$$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq $$missing >/dev/null

.PHONY: run
run: build ## Build and start the server on $(ADDR) with embedded defaults (another port: ADDR=:8081; more flags: ARGS='-log-format json')
	./bin/switchyard -addr $(ADDR) $(ARGS)

# -v lists each package as it is compiled, so a first build from empty
# caches (about 300 packages, a minute or more on 2 cores) shows progress;
# with warm caches it prints nothing.
.PHONY: build
build: ## Build bin/switchyard
	@echo "go build bin/switchyard (a first build compiles every dependency, listed below: a minute or more)"
	go build -v -o bin/switchyard ./cmd/switchyard

# grpcurl and buf are module tools: `go tool` compiles them on first use,
# silently. Building them here shows the progress and warms the caches.
.PHONY: tools
tools: ## Build the pinned tools (grpcurl, buf, protoc plugins) with progress; later `go tool` runs start at once
	go build -v -o /dev/null -modfile=tools/go.mod github.com/fullstorydev/grpcurl/cmd/grpcurl \
		google.golang.org/protobuf/cmd/protoc-gen-go connectrpc.com/connect/cmd/protoc-gen-connect-go
	go build -v -o /dev/null -modfile=tools/buf/go.mod github.com/bufbuild/buf/cmd/buf
	$(GRPCURL) -version
	$(BUF) --version

.PHONY: generate
generate: ## Regenerate gen/ from proto/ with buf, and the descriptor image reflection serves
	$(BUF) generate
	$(BUF) build --as-file-descriptor-set -o $(REFLECTION_IMAGE)

.PHONY: lint
lint: ## buf lint, buf format, gofmt, go vet, and the repository checks (no committed binaries, Markdown paths exist)
	$(BUF) lint
	$(BUF) format --diff --exit-code
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	go vet ./...
	go vet -tags scale ./e2e/scale/
	cd bench && go vet ./...
	cd conformance && go vet ./...
	cd deploy/check && go vet ./...
	go test -count=1 ./internal/repocheck
	cd tools/h2spec && go vet ./...

.PHONY: checkgenerate
checkgenerate: generate ## Fail when generated code differs from what is committed
	@test -z "$$(git status --porcelain -- gen $(WEB_GEN) $(REFLECTION_IMAGE))" || { echo "make generate changed generated files; commit the result:"; git status --porcelain -- gen $(WEB_GEN) $(REFLECTION_IMAGE); git diff --stat -- gen $(WEB_GEN) $(REFLECTION_IMAGE); exit 1; }

.PHONY: breaking
breaking: ## buf breaking against the previous commit (skipped on the first one)
	@if git rev-parse -q --verify HEAD~1 >/dev/null; then \
		echo "buf breaking --against .git#ref=HEAD~1"; \
		$(BUF) breaking --against '.git#ref=HEAD~1'; \
	else \
		echo "buf breaking: no previous commit to compare with"; \
	fi

# test_summary counts a `go test -v` log's passes, failures and skips and,
# when anything failed, prints what each failing test wrote (the summary
# lines alone do not say why) and fails.
define test_summary
pass=$$(grep -c -- '--- PASS' $(1) || true); fail=$$(grep -c -- '--- FAIL' $(1) || true); \
skip=$$(grep -c -- '--- SKIP' $(1) || true); \
echo "$(2): $$pass passed, $$fail failed, $$skip skipped"; \
if grep -qE '^(FAIL|panic:)' $(1); then \
	echo "== what the failing tests wrote ($(1))"; awk -f tools/failed-tests.awk $(1); exit 1; \
fi
endef

.PHONY: unit
# The Go vulnerability database as of its snapshot in this module version
# (golang.org/x/vulndb's data/osv, read offline): raise it to check against
# newer reports.
VULNDB := golang.org/x/vulndb@v0.0.0-20261105234957-e22db6528018

.PHONY: vulncheck
vulncheck: ## govulncheck: no known vulnerability the server's code reaches (Go toolchain and modules), per the pinned database
	@dir=$$(go mod download -json $(VULNDB) | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$$/\1/p'); \
	test -d "$$dir/data/osv" || { echo "vulncheck: no data/osv in $(VULNDB)"; exit 1; }; \
	echo "govulncheck against $(VULNDB)"; \
	go tool -modfile=tools/vuln/go.mod govulncheck -db "file://$$dir/data/osv" ./...

unit: ## go test -race ./... with a pass/fail/skip count
	@mkdir -p $(TMP)
	go test -race -count=1 -v ./... 2>&1 | tee $(TMP)/test.log | grep -E '^(--- |ok|FAIL|panic)' || true
	@$(call test_summary,$(TMP)/test.log,tests)

.PHONY: e2e
e2e: ## End-to-end suite: the real switchyard process called by grpcurl, buf curl, curl, grpc-go, the demo clients, examples/sdk and the README's commands
	@mkdir -p $(TMP)
	go vet -tags e2e ./e2e/
	go test -tags e2e -count=1 -v ./e2e/ 2>&1 | tee $(TMP)/e2e.log | grep -E '^ *(--- |ok|FAIL|panic)' || true
	@$(call test_summary,$(TMP)/e2e.log,e2e cases (tests and subtests))

.PHONY: test
test: lint checkgenerate breaking vulncheck unit e2e test-scale deploy-check fuzz soak-short ## Every check and test (what CI runs)

.PHONY: test-scale
test-scale: ## Scale-out on loopback: PostgreSQL, two replicas behind nginx; two processes on one SQLite directory; rolling upgrades (needs the git history)
	@mkdir -p $(TMP)
	go test -tags scale -count=1 -v ./e2e/scale/ 2>&1 | tee $(TMP)/scale.log | grep -E '^ *(--- |ok|FAIL|panic)' || true
	@$(call test_summary,$(TMP)/scale.log,scale cases (tests and subtests))

.PHONY: deploy-check
deploy-check: ## Check deploy/ with real parsers: Kubernetes types, compose-go, the Dockerfile parser, systemd-analyze, nginx -t
	go test -count=1 ./internal/nginxtest/
	cd deploy/check && go test -count=1 ./...

# The Connect conformance suite (connectrpc.com/conformance), the protocol
# suite connect-go runs on itself: its runner's reference clients (connect-go
# and grpc-go) against conformance/serverundertest, the suite's service served
# by server.NewStack and Stack.Serve as the binary serves.
# conformance/config.yaml declares what Switchyard supports; every case must
# pass, with no list of exceptions. The server is built with -race and stops
# at the first race (GORACE), which fails the cases after it.
# `make conformance-nethttp` runs the same against -http2-server net/http, the
# baseline (by hand: one of its cases races the suite's own client deadline;
# see BENCHMARKS.md).
CONFORMANCE_VERSION := v1.0.7
CONFORMANCE_RUNNER := $(TMP)/bin/connectconformance
CONFORMANCE_SERVER := $(TMP)/bin/serverundertest
# The suite's protos the server-under-test needs, generated from its module.
CONFORMANCE_PROTOS := config.proto server_compat.proto service.proto

.PHONY: conformance-runner
conformance-runner: ## Install the conformance suite's runner, pinned, into .tmp/bin
	GOBIN=$(abspath $(TMP)/bin) go install connectrpc.com/conformance/cmd/connectconformance@$(CONFORMANCE_VERSION)

.PHONY: conformance-server
conformance-server: conformance-runner
	@mkdir -p $(TMP)/conformance
	cd conformance && go build -race -o ../$(CONFORMANCE_SERVER) ./serverundertest

.PHONY: conformance
conformance: conformance-server ## Connect conformance suite against the real stack (internal/h2): every case must pass
	@rm -f $(TMP)/conformance/switchyard.log
	@echo "== conformance, -http2-server switchyard (server log: $(TMP)/conformance/switchyard.log)"
	GORACE=halt_on_error=1 $(CONFORMANCE_RUNNER) --mode server --conf conformance/config.yaml \
		-- $(CONFORMANCE_SERVER) -http2-server switchyard -log-file $(TMP)/conformance/switchyard.log

.PHONY: conformance-nethttp
conformance-nethttp: conformance-server ## The conformance suite against -http2-server net/http, the baseline (by hand)
	@rm -f $(TMP)/conformance/net-http.log
	GORACE=halt_on_error=1 $(CONFORMANCE_RUNNER) --mode server --conf conformance/config.yaml \
		-- $(CONFORMANCE_SERVER) -http2-server net/http -log-file $(TMP)/conformance/net-http.log

# The suite's protos are read from its Go module, never copied here, and
# generated with conformance/buf.gen.yaml outside the product's buf
# workspace: the reflection image and `grpcurl list` do not see them.
.PHONY: conformance-generate
conformance-generate: ## Regenerate conformance/gen from the conformance suite's protos
	@dir=$$(go mod download -json connectrpc.com/conformance@$(CONFORMANCE_VERSION) | grep '"Dir"' | cut -d'"' -f4); \
	test -d "$$dir/proto" || { echo "conformance-generate: no protos in '$$dir'"; exit 1; }; \
	echo "buf generate --template conformance/buf.gen.yaml $$dir"; \
	$(BUF) generate --template conformance/buf.gen.yaml "$$dir" \
		$(foreach p,$(CONFORMANCE_PROTOS),--path "$$dir/proto/connectrpc/conformance/v1/$(p)")

.PHONY: conformance-checkgenerate
conformance-checkgenerate: conformance-generate
	@test -z "$$(git status --porcelain -- conformance/gen)" || { echo "make conformance-generate changed conformance/gen; commit the result:"; git status --porcelain -- conformance/gen; exit 1; }

generate: conformance-generate
checkgenerate: conformance-checkgenerate
test: conformance

# An execution count, not a duration: with a duration, Go 1.26's fuzz
# coordinator can fail a target with a bare "context deadline exceeded" as
# the time runs out, without any failing input (go.dev/issue/75804, fixed
# in Go 1.27). A count has no deadline to race. 8000 is ~2-6 s per target
# here; FUZZTIME=1m (a duration) still works for longer runs by hand.
FUZZTIME ?= 8000x
FUZZ_PKGS := ./services/keywords ./internal/server ./internal/h2 ./internal/telemetry ./internal/grpcunary

.PHONY: fuzz
fuzz: ## Run every native Go fuzz target for $(FUZZTIME) each (seed corpora in testdata/fuzz/)
	@for pkg in $(FUZZ_PKGS); do \
		for target in $$(go test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
			echo "== fuzz $$pkg $$target ($(FUZZTIME))"; \
			go test -run '^$$' -fuzz "^$$target\$$" -fuzztime $(FUZZTIME) $$pkg; \
		done; \
	done

SOAK_DURATION ?= 3m
SOAK_CLIENTS ?= 32

.PHONY: soak
soak: build ## Soak a real process with mixed traffic in every protocol ($(SOAK_DURATION), $(SOAK_CLIENTS) clients)
	go run ./cmd/soak -binary bin/switchyard -duration $(SOAK_DURATION) -clients $(SOAK_CLIENTS)

.PHONY: soak-short
soak-short: build ## The soak test for 20 s (part of make test)
	go run ./cmd/soak -binary bin/switchyard -duration 20s -clients 16

# h2spec (pinned in tools/h2spec/go.mod) against both HTTP/2 servers of the
# binary, on free ports, H2SPEC_RUNS times each (tools/h2spec/compare).
H2SPEC_RUNS ?= 3

.PHONY: h2spec
h2spec: build ## h2spec against internal/h2 and net/http's HTTP/2 server: nothing net/http passes may fail on internal/h2 (part of test)
	@mkdir -p $(TMP)/bin
	go build -modfile=tools/h2spec/go.mod -o $(TMP)/bin/h2spec github.com/summerwind/h2spec/cmd/h2spec
	cd tools/h2spec && go build -o ../../$(TMP)/bin/h2spec-compare ./compare
	$(TMP)/bin/h2spec-compare -switchyard bin/switchyard -h2spec $(TMP)/bin/h2spec -runs $(H2SPEC_RUNS)

# BENCHARGS go to benchrun, e.g. "-rounds 5 -d 10s", "-only getteam,getfeature",
# "-cores 1,2" (counts this machine cannot give are skipped), "-postgres off".
.PHONY: bench
bench: ## Switchyard vs grpc-go peers, every row at 1 server core, ~11 min (not part of test; BENCHARGS: see BENCHMARKS.md)
	bench/bundle.sh $(TMP)/bench
	$(TMP)/bench/benchrun -bin $(TMP)/bench $(BENCHARGS)

.PHONY: bench-bundle
bench-bundle: ## Static benchmark binaries, multicore.sh and device.sh in .tmp/bench-bundle (and .tar.gz), for a many-core machine with nothing installed
	bench/bundle.sh $(TMP)/bench-bundle
	tar -czf $(TMP)/bench-bundle.tar.gz -C $(TMP) bench-bundle
	@echo "copy $(TMP)/bench-bundle.tar.gz to the machine, unpack it and run bench-bundle/multicore.sh (about 30 minutes), or bench-bundle/device.sh on a machine lent for minutes (BENCHMARKS.md)"

.PHONY: bench-test
bench-test: ## Tests of the benchmark's tools: load generator, peers, benchrun, syprof, multicore.sh and device.sh at 1 server core
	cd bench && go test -race -count=1 ./...

test: bench-test

ATTACKARGS ?=

.PHONY: attack
attack: ## Every HTTP/2 denial-of-service class against internal/h2 and net/http's server: CPU, RSS, legitimate calls served (not part of test)
	@mkdir -p $(TMP)/bench
	go build -o $(TMP)/bench/switchyard ./cmd/switchyard
	cd bench && go build -o ../$(TMP)/bench/ ./cmd/attack
	sync $(TMP)/bench/switchyard # written back, as a deployed binary is (bench/bundle.sh)
	$(TMP)/bench/attack -bin $(TMP)/bench/switchyard $(ATTACKARGS)

.PHONY: microbench
microbench: ## Go micro-benchmarks of the call paths, with allocations (see BENCHMARKS.md)
	go test -run '^$$' -bench . -benchmem ./...

.PHONY: clean
clean: ## Remove build output
	rm -rf bin $(TMP)

# Browsers: the TypeScript SDK (web/gen, from buf.gen.yaml's protoc-gen-es),
# the console bundle (web/dist, embedded by the binary) and the Chromium test.
WEB_GEN := web/gen web/dist

web/node_modules: web/package.json web/package-lock.json
	cd web && npm ci --no-audit --no-fund
	@touch $@

# buf generate runs protoc-gen-es from web/node_modules; the console bundle
# is rebuilt from the freshly generated SDK.
generate: web/node_modules
checkgenerate: web

.PHONY: web
web: web/node_modules generate ## Rebuild the console bundle web/dist (committed; embedded by go:embed)
	cd web && node build.mjs

.PHONY: browser
browser: web/node_modules ## Chromium end-to-end test: console (same and cross origin), gRPC-Web, Connect, grpc-web runtime
	cd web && node --test test/

test: browser
test: h2spec

.PHONY: screenshot
screenshot: web/node_modules ## Redraw docs/console.png: the console in Chromium calling localhost:50051 (not part of make test)
	cd web && node screenshot.mjs ../docs/console.png
