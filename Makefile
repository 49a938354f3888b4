# ferry: the two set-up commands are `make demo` and `make test` (see README.md).
GO       ?= go
BIN      ?= bin/ferry
# A semantic version from the latest vX.Y.Z tag (v0.0.0-dev without one);
# the commit is printed beside it by 'ferry version'.
VERSION  ?= $(shell git describe --tags --match 'v[0-9]*' --dirty 2>/dev/null || echo v0.0.0-dev)
COMMIT   ?= $(shell git rev-parse HEAD 2>/dev/null)
LDFLAGS  := -s -w -X github.com/ferry-dev/ferry/internal/cli.Version=$(VERSION) -X github.com/ferry-dev/ferry/internal/cli.Commit=$(COMMIT)
STATICCHECK_VERSION := v0.8.2

.PHONY: build tools test lint demo fuzz clean test-node-loss test-faults soak release image test-ui

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/ferry

# Pinned external tools (MinIO, ...) into $${FERRY_TOOLS_DIR:-~/.cache/ferry/tools}.
tools:
	bash scripts/install-tools.sh

# The whole test suite against real servers. CI runs exactly this. The
# deployment files' tests are a module of their own (deploy/validate: the
# Kubernetes and KEDA API types stay out of ferry's go.mod).
test: tools lint
	$(GO) test -race -timeout 50m ./...
	cd deploy/validate && $(GO) test -timeout 10m ./...

# A soak of the 3-node cluster node-loss end-to-end test: ten runs in a row
# (make test runs it once).
test-node-loss: tools
	$(GO) test -count=10 -run 'TestClusterThreeWorkersNodeKilled$$' -v ./e2e

# Issue 10's fault table (docs/reliability.md): every fault class alone and
# all mixed at 5%, 20% and 50% of the requests, a ferry job between two MinIO
# servers behind fault proxies, checked by an independent MD5 of every
# object. Several minutes; not in make test (which runs the mixed 20% row).
# FERRY_FAULT_TABLE_OUT=FILE also writes the table there.
test-faults: tools
	FERRY_FAULT_TABLE=1 $(GO) test -count=1 -p 1 -timeout 90m -run 'TestFaultTable$$' -v ./e2e

# The soak (docs/reliability.md; not in CI): 100,000 tiny objects, mixed
# faults, the ferry process SIGKILLed every 30 s and resumed, for at least
# 15 minutes, then an independent MD5 check of every object. SOAK_FLAGS
# overrides FERRY_SOAK_OBJECTS, FERRY_SOAK_DURATION, FERRY_SOAK_KILL_EVERY,
# FERRY_SOAK_RATE, e.g. SOAK_FLAGS='FERRY_SOAK_OBJECTS=20000'.
soak: tools
	FERRY_SOAK=1 $(SOAK_FLAGS) $(GO) test -count=1 -p 1 -timeout 4h -run 'TestSoak$$' -v ./e2e

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo 'gofmt: files above need formatting'; exit 1; }
	$(GO) mod tidy -diff
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...
	cd deploy/validate && $(GO) mod tidy -diff && $(GO) vet ./... && \
		$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...
	cd uitest && $(GO) mod tidy -diff && $(GO) vet ./... && \
		$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...

# The dashboard in a real headless browser (uitest/, a module of its own so
# chromedp stays out of ferry's go.mod): a real rate-limited job with
# --ui-addr, watched advancing, paused and resumed from the page. Needs
# Debian's chromium package (skips without it, fails under CI). The
# screenshot goes to $$FERRY_ARTIFACTS (default: the test's temp dir).
test-ui:
	cd uitest && $(GO) test -count=1 -timeout 10m -v ./...

# A real migration on this machine: two local MinIO servers, a few thousand
# objects, copied with the progress display and verified.
demo: build tools
	bash scripts/demo.sh

fuzz:
	$(GO) test -run '^$$' -fuzz FuzzParse -fuzztime 30s ./internal/location
	$(GO) test -run '^$$' -fuzz FuzzCompile -fuzztime 30s ./internal/filter
	$(GO) test -run '^$$' -fuzz FuzzParse -fuzztime 30s ./internal/config

clean:
	rm -rf bin dist

# Release binaries: dist/ferry-VERSION-OS-ARCH for each platform, and
# dist/SHA256SUMS. Reproducible: the same commit and Go version give the same
# bytes (no cgo, -trimpath, fixed flags and CPU baselines). -buildvcs=false:
# the commit is in the version (git describe), so a build from a source
# archive without .git gives the same bytes, as the Containerfile's does.
RELEASE_PLATFORMS := linux/amd64 linux/arm64 darwin/amd64 darwin/arm64
release:
	rm -rf dist && mkdir -p dist
	@set -e; for p in $(RELEASE_PLATFORMS); do \
		os=$${p%/*}; arch=$${p#*/}; out=dist/ferry-$(VERSION)-$$os-$$arch; \
		echo "build $$out"; \
		CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch GOAMD64=v1 GOARM64=v8.0 GOFLAGS=-mod=readonly \
			$(GO) build -trimpath -buildvcs=false -ldflags '$(LDFLAGS)' -o $$out ./cmd/ferry; \
	done
	cd dist && if command -v sha256sum >/dev/null; then sha256sum ferry-*; else shasum -a 256 ferry-*; fi > SHA256SUMS
	cat dist/SHA256SUMS

# The container image (Containerfile; docs/deploy.md). Not part of make test:
# it needs a container engine.
CONTAINER ?= podman
IMAGE     ?= ferry:$(VERSION)
image:
	$(CONTAINER) build -f Containerfile -t $(IMAGE) \
		--build-arg VERSION=$(VERSION) \
		--build-arg SOURCE_DATE_EPOCH=$$(git log -1 --format=%ct) .

# Benchmarks against the pinned peers (bench/, docs/performance.md): two MinIO
# servers on /dev/shm, ferry vs s5cmd and rclone, ~15 minutes. The first run
# builds s5cmd and rclone into the tools dir (rclone takes minutes).
# BENCH_FLAGS: e.g. -cases 1,2 -rounds 5 -cpuprofile-dir bench/results/profiles
.PHONY: bench bench-smoke
bench: build
	bash scripts/install-tools.sh bench
	$(GO) run ./bench $(BENCH_FLAGS)

# Tiny datasets, one round, peers only if installed: CI runs this so the
# harness never rots. Fails when a ferry run fails or `ferry verify` differs.
bench-smoke: build tools
	$(GO) run ./bench -smoke
