##@ Load test

# Shape of `make loadtest`: the mix at LOADTEST_RPS for LOADTEST_DURATION with the spec's gates.
LOADTEST_RPS      ?= 2000
LOADTEST_DURATION ?= 20s
# `make bench`: each RPC for BENCH_DURATION at BENCH_CONCURRENCY, then the mix at BENCH_MIX_RPS.
BENCH_DURATION    ?= 10s
BENCH_CONCURRENCY ?= 16
BENCH_MIX_RPS     ?= 8000
# Extra flags for either, e.g. LOADTEST_FLAGS='--seed 50000'.
LOADTEST_FLAGS    ?=

.PHONY: loadtest
loadtest: build ## Local stack + 10k seeded users, the mix at LOADTEST_RPS with the spec's gates (P95 200ms, P99 500ms, errors 0.1%, 1000 req/s)
	cd loadtest && $(GO) run . --local --bin $(BIN)/auth-service --out out/loadtest \
		--rps $(LOADTEST_RPS) --duration $(LOADTEST_DURATION) --concurrency 64 $(LOADTEST_FLAGS)

.PHONY: bench
bench: build ## Health-check floor, each RPC as a ratio of it (p50/p99), then the mix at BENCH_MIX_RPS; see loadtest/RESULTS.md
	cd loadtest && $(GO) run . --local --bin $(BIN)/auth-service --out out/bench --bench \
		--duration $(BENCH_DURATION) --concurrency $(BENCH_CONCURRENCY) --bench-mix-rps $(BENCH_MIX_RPS) $(LOADTEST_FLAGS)

.PHONY: bench-external
bench-external: build ## Two ghz CLI processes at 2,500 req/s each against a bare grpc-go health server, then the service (VerifyToken, GetUser): p50/p99 ratios
	cd loadtest && $(GO) build -o $(BIN)/ghz github.com/bojand/ghz/cmd/ghz && $(GO) run . --local --bin $(BIN)/auth-service \
		--out out/external --external $(BIN)/ghz --duration 20s --concurrency 50 --warmup 1000 $(LOADTEST_FLAGS)

.PHONY: loadtest-smoke
loadtest-smoke: build ## Short gated mix against a local stack (what `make test` runs through go test ./loadtest)
	cd loadtest && $(GO) run . --local --bin $(BIN)/auth-service --out out/smoke \
		--seed 1000 --rps 1500 --duration 6s --warmup-time 2s --warmup 0 --progress 0 $(LOADTEST_FLAGS)
