# consentd developer targets. `make test` is what CI runs (.ci/run).
SHELL := /bin/bash
export CONSENTD_KAFKA_PORT ?= 9092
export CONSENTD_REDIS_PORT ?= 6379
export CONSENTD_STATE ?= /tmp/consentd-services
GO ?= go

# VERSION is stamped into the binary (and the image): the git description,
# or "dev" outside a git checkout. VERSION_SYMBOL is the variable it sets.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
VERSION_SYMBOL ?= main.version
LDFLAGS := -s -w -X $(VERSION_SYMBOL)=$(VERSION)

.PHONY: test unit services-up services-down services-status install-services bench bench-e2e bench-propagation fuzz lint build image compose-config deploy-check

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/consentd ./cmd/consentd

# the container image, with the same version stamp (needs a Docker engine).
image:
	docker build --build-arg VERSION=$(VERSION) -t consentd:$(VERSION) .

# the operations package: alert rules (promtool), dashboard queries, compose
# file and key ownership, .dockerignore, Kubernetes manifests, example configs.
deploy-check:
	$(GO) test -count=1 ./deploy/ ./config/

# validate the compose file with docker compose (or docker-compose) where
# one is installed; `go test ./deploy/` checks the rest without Docker.
compose-config:
	@if docker compose version >/dev/null 2>&1; then docker compose config -q; \
	elif command -v docker-compose >/dev/null; then docker-compose config -q; \
	else echo "compose-config: no docker compose here; go test ./deploy/ checks the file"; fi

# install what is missing, start Kafka (plaintext and SASL_SSL) and Redis
# (plain, TLS, Cluster, Sentinel), run every test (integration included,
# never skipped) with the addresses, certificates and credentials from
# $(CONSENTD_STATE)/services.env, stop the services whatever the outcome.
test: services-up
	@status=0; \
	set -a; . "$(CONSENTD_STATE)/services.env"; set +a; \
	CONSENTD_REQUIRE_INTEGRATION=1 \
	$(GO) test -race -shuffle=on -count=1 -timeout 14m ./... || status=$$?; \
	scripts/services.sh down; \
	exit $$status

# fast tests only: no services needed, integration tests skip.
unit:
	$(GO) test -race -count=1 ./...

install-services:
	scripts/services.sh install

services-up:
	scripts/services.sh up

services-down:
	scripts/services.sh down

services-status:
	scripts/services.sh status

lint:
	test -z "$$(gofmt -l .)" || { gofmt -l .; exit 1; }
	$(GO) vet ./...

# per-event policy path: ns/op and allocs/op
bench:
	$(GO) test -run XXX -bench . -benchmem ./event/ ./policy/ ./pipeline/

# end to end on real Kafka and Redis, one markdown table: a plain kafka-go
# pass-through, a partition-parallel one (consentd's plumbing, copying),
# consentd with a 1-output job and with the shipped 3-output policy, each in
# a process of its own: steady events/s, CPU µs/event and peak RSS of that
# process, raw->clean latency p50/p99/max at a fixed offered rate; every
# pass's writes checked against the data. BENCH_FLAGS adds flags, e.g.
#   --events N --users N --partitions N --rounds N (median of the rounds)
#   --latency-rate R (default: half the consentd 1-output rate of the run)
#   --latency-duration 10s (0 skips the latency phase)
#   --consentd-cpuprofile PREFIX (a CPU profile of every consentd process)
BENCH_KAFKA_VERSION := $(shell sed -n 's/^KAFKA_VERSION=//p' scripts/services.sh)
bench-e2e: services-up
	@status=0; $(GO) run ./cmd/consentd-bench --brokers 127.0.0.1:$(CONSENTD_KAFKA_PORT) --redis 127.0.0.1:$(CONSENTD_REDIS_PORT) --kafka-version "$(BENCH_KAFKA_VERSION)" $(BENCH_FLAGS) || status=$$?; \
	scripts/services.sh down; exit $$status

# revocation propagation with two instances in one group: p50/p99/max
bench-propagation: services-up
	@status=0; $(GO) run ./cmd/consentd-bench --propagation --brokers 127.0.0.1:$(CONSENTD_KAFKA_PORT) --redis 127.0.0.1:$(CONSENTD_REDIS_PORT) || status=$$?; \
	scripts/services.sh down; exit $$status

fuzz:
	$(GO) test -run XXX -fuzz FuzzParse -fuzztime 30s ./event/
	$(GO) test -run XXX -fuzz FuzzEdit -fuzztime 30s ./event/
	$(GO) test -run XXX -fuzz FuzzIndex -fuzztime 30s ./event/
