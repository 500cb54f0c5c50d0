# nova-auth — run `make help` for the targets.
SHELL := /bin/bash
GO    ?= go
BIN   := $(CURDIR)/bin
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
# How much `make test` fuzzes: a count of inputs per target, about 10 s each on
# a 2-core machine. A count, not a duration: with a duration, Go 1.26's fuzz
# coordinator can end a clean run with "context deadline exceeded" and no
# crasher (golang/go#75804, fixed in Go 1.27). `make fuzz FUZZTIME=2000000x`
# sets both targets' budget; a duration (FUZZTIME=5m) works but can hit that bug.
FUZZTIME ?=

.DEFAULT_GOAL := help

##@ General

.PHONY: help
help: ## Show this help
	@awk 'BEGIN {FS = ":.*##"; printf "Usage: make \033[36m<target>\033[0m\n"} \
		/^[a-zA-Z0-9_-]+:.*?##/ { printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2 } \
		/^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) }' $(MAKEFILE_LIST)

##@ Run

.PHONY: run
run: build ## Run the service: throwaway PostgreSQL under .data/, demo user, keys, token; Ctrl-C stops
	$(GO) build -o $(BIN)/devstack ./internal/devstack/cmd/devstack && exec $(BIN)/devstack --bin $(BIN)/auth-service

##@ Build

.PHONY: build
build: ## Build bin/auth-service (static, no cgo)
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/auth-service ./service/cmd/auth-service

.PHONY: proto
proto: $(BIN)/buf $(BIN)/protoc-gen-go $(BIN)/protoc-gen-go-grpc ## Regenerate the Go code beside the .proto (pinned buf and plugins)
	cd service/proto && $(BIN)/buf lint && $(BIN)/buf generate

.PHONY: verify-proto
verify-proto: proto ## Fail when the committed generated code differs from what `make proto` makes
	@if [ -n "$$(git status --porcelain -- service/proto)" ]; then \
		git status --porcelain -- service/proto; git diff -- service/proto | head -50; \
		echo "generated code is stale: run make proto and commit"; exit 1; fi

$(BIN)/buf $(BIN)/protoc-gen-go $(BIN)/protoc-gen-go-grpc &: tools/go.mod tools/go.sum
	cd tools && $(GO) build -o $(BIN)/ github.com/bufbuild/buf/cmd/buf google.golang.org/protobuf/cmd/protoc-gen-go \
		google.golang.org/grpc/cmd/protoc-gen-go-grpc

$(BIN)/grpcurl: tools/go.mod tools/go.sum
	cd tools && $(GO) build -o $(BIN)/ github.com/fullstorydev/grpcurl/cmd/grpcurl

# An OpenTelemetry Collector with the OTLP receiver and the file exporter
# only, pinned in a module of its own (its dependencies stay out of every
# other module); the tracing tests read traces back from its file.
$(BIN)/otelcol: tools/otelcol/go.mod tools/otelcol/go.sum tools/otelcol/main.go
	cd tools/otelcol && $(GO) build -o $(BIN)/otelcol .

.PHONY: otelcol
otelcol: $(BIN)/otelcol ## Build bin/otelcol (pinned collector: OTLP in, JSON lines out; bin/otelcol --config file:CONFIG)

.PHONY: grpcurl
grpcurl: $(BIN)/grpcurl ## Build bin/grpcurl (pinned) to try the API

##@ Test

.PHONY: test
test: lint verify-proto test-go fuzz test-chart cluster-build test-cluster e2e e2e-kind ## Everything CI runs: lint, generated code, Go tests (service, clients, load smoke), fuzz, chart, local cluster, e2e on it, then e2e on three kind nodes (policy, HPA, node loss)

.PHONY: lint
lint: ## gofmt, go vet, go mod tidy
	@out=$$(gofmt -l $$(git ls-files '*.go' | grep -v '\.pb\.go$$')); \
		if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	@for m in loadtest chartstest e2e tools/otelcol; do (cd $$m && echo "go vet ($$m)" && $(GO) vet ./...) || exit 1; done
	@# Every module of ours says exactly what it uses.
	@for m in . loadtest chartstest e2e tools tools/otelcol; do \
		(cd $$m && $(GO) mod tidy -diff >/dev/null) || { echo "go.mod/go.sum of $$m not tidy: cd $$m && go mod tidy"; exit 1; }; done

.PHONY: test-go
test-go: $(BIN)/otelcol ## Go tests of the root module and the load test (real PostgreSQL and gRPC on loopback, an OpenTelemetry Collector for the traces)
	$(GO) test -count=1 ./...
	cd loadtest && $(GO) test -count=1 ./...

.PHONY: fuzz
fuzz: ## Fuzz VerifyToken's input and the gRPC request UTF-8 check (about 10s each; FUZZTIME=5m or =Nx for more)
	$(GO) test -run='^$$' -fuzz=FuzzVerify -fuzztime=$(or $(FUZZTIME),300000x) ./internal/tokens
	$(GO) test -run='^$$' -fuzz=FuzzInvalidUTF8Field -fuzztime=$(or $(FUZZTIME),100000x) ./service/internal/grpcserver

.PHONY: bench-service
bench-service: ## go test benchmarks: VerifyToken, GetUser, CheckPermission, ListUsers (cache on and off) against a health-check baseline
	$(GO) test -run='^$$' -bench=. -benchmem ./internal/tokens ./service/internal/app

.PHONY: clean
clean: ## Remove bin/, dist/ and .data/
	rm -rf bin dist .data

# Fragments of the chart, the local cluster, the e2e suite and the load test.
-include chartstest/Makefile.mk e2e/Makefile.mk e2e/e2e.mk loadtest/Makefile.mk
