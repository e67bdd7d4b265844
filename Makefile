# consentd developer targets. `make test` is what CI runs (.ci/run).
SHELL := /bin/bash
export CONSENTD_KAFKA_PORT ?= 9092
export CONSENTD_REDIS_PORT ?= 6379
GO ?= go

.PHONY: test unit services-up services-down install-services bench bench-e2e bench-propagation fuzz lint build

build:
	$(GO) build -o bin/consentd ./cmd/consentd

# install what is missing, start Redis and Kafka, run every test (integration
# included, never skipped), stop the services whatever the outcome.
test: services-up
	@status=0; \
	CONSENTD_TEST_KAFKA=127.0.0.1:$(CONSENTD_KAFKA_PORT) \
	CONSENTD_TEST_REDIS=127.0.0.1:$(CONSENTD_REDIS_PORT) \
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

lint:
	test -z "$$(gofmt -l .)" || { gofmt -l .; exit 1; }
	$(GO) vet ./...

# per-event policy path: ns/op and allocs/op
bench:
	$(GO) test -run XXX -bench . -benchmem ./event/ ./policy/ ./pipeline/

# end to end on real Kafka and Redis: consentd vs a plain kafka-go pass-through
bench-e2e: services-up
	@status=0; $(GO) run ./cmd/consentd-bench --brokers 127.0.0.1:$(CONSENTD_KAFKA_PORT) --redis 127.0.0.1:$(CONSENTD_REDIS_PORT) || status=$$?; \
	scripts/services.sh down; exit $$status

# revocation propagation with two instances in one group: p50/p99/max
bench-propagation: services-up
	@status=0; $(GO) run ./cmd/consentd-bench --propagation --brokers 127.0.0.1:$(CONSENTD_KAFKA_PORT) --redis 127.0.0.1:$(CONSENTD_REDIS_PORT) || status=$$?; \
	scripts/services.sh down; exit $$status

fuzz:
	$(GO) test -run XXX -fuzz FuzzParse -fuzztime 30s ./event/
	$(GO) test -run XXX -fuzz FuzzEdit -fuzztime 30s ./event/
