# Cairn build, test and verification entry points.
# `make` (no target) builds; `make help` lists the targets.

GO          ?= go
SEEDS       ?= 200
FUZZTIME    ?= 10s
GOBIN_DIR   := $(shell $(GO) env GOPATH)/bin
STATICCHECK := $(GOBIN_DIR)/staticcheck
RAPID_PKG   := pgregory.net/rapid

.DEFAULT_GOAL := build

.PHONY: build test lint sim run fuzz nightly nightly-test bench clean help

## build: compile every package and bin/cairn
build:
	$(GO) build ./...
	$(GO) build -o bin/cairn ./cmd/cairn

## test: go vet, then the full test suite
test:
	$(GO) vet ./... && $(GO) test -count=1 -timeout 25m ./...

## lint: go vet plus staticcheck (installed on first use)
lint: $(STATICCHECK)
	$(GO) vet ./...
	$(STATICCHECK) ./...

$(STATICCHECK):
	$(GO) install honnef.co/go/tools/cmd/staticcheck@latest

## run: a local 3-node cluster on 127.0.0.1 with volume demo at nbd://127.0.0.1:10809/demo (Ctrl-C stops; data in ./data or $CAIRN_DATA)
run:
	$(GO) build -o bin/cairn ./cmd/cairn
	./scripts/run.sh

## sim: build bin/cairn and run the simulator over SEEDS seeds (default 200)
sim:
	$(GO) build -o bin/cairn ./cmd/cairn
	./bin/cairn sim --seeds $(SEEDS)

## fuzz: run every Fuzz* target in ./fuzz for FUZZTIME each (default 10s)
fuzz:
	@set -e; \
	if ! ls fuzz/*_test.go >/dev/null 2>&1; then \
		echo "fuzz: no test files in ./fuzz, nothing to do"; exit 0; \
	fi; \
	list=$$($(GO) test ./fuzz -list '^Fuzz') || { printf '%s\n' "$$list"; exit 1; }; \
	targets=$$(printf '%s\n' "$$list" | grep '^Fuzz' || true); \
	if [ -z "$$targets" ]; then echo "fuzz: no Fuzz targets in ./fuzz"; exit 0; fi; \
	failed=""; \
	for t in $$targets; do \
		echo "==> fuzz $$t for $(FUZZTIME)"; \
		$(GO) test ./fuzz -run='^$$' -fuzz="^$$t\$$" -fuzztime=$(FUZZTIME) || failed="$$failed $$t"; \
	done; \
	if [ -n "$$failed" ]; then echo "fuzz: FAILED:$$failed"; exit 1; fi

## nightly: sim with 5000 seeds, 5m per fuzz target, tests with 10000 rapid checks,
##          real processes under faults for E2E_DURATION (default 10m)
##          (all four always run; the target fails if any of them failed)
E2E_DURATION ?= 10m
nightly:
	@failed=""; \
	$(MAKE) --no-print-directory sim SEEDS=5000 || failed="$$failed sim"; \
	$(MAKE) --no-print-directory fuzz FUZZTIME=5m || failed="$$failed fuzz"; \
	$(MAKE) --no-print-directory nightly-test || failed="$$failed test"; \
	echo "==> real processes under faults for $(E2E_DURATION)"; \
	E2E_DURATION=$(E2E_DURATION) $(GO) test ./e2e -run TestFaultsRealProcesses -count=1 -timeout 30m -v || failed="$$failed e2e-faults"; \
	if [ -n "$$failed" ]; then echo "nightly: FAILED:$$failed"; exit 1; fi; \
	echo "nightly: all passed"

# `go test ./... -rapid.checks=N` cannot be used as is: test binaries that do
# not link rapid reject the unknown flag. So packages whose test binary links
# rapid get the flag and the rest run without it.
nightly-test:
	@set -e; \
	all=$$($(GO) list ./...); \
	rapid=$$($(GO) list -test -f '{{if and (eq .Name "main") (not .ForTest)}}{{$$p := .ImportPath}}{{range .Deps}}{{if eq . "$(RAPID_PKG)"}}{{$$p}}{{"\n"}}{{end}}{{end}}{{end}}' ./... | sed -n 's/\.test$$//p' | tr '\n' ' '); \
	plain=""; \
	for p in $$all; do \
		case " $$rapid " in *" $$p "*) ;; *) plain="$$plain $$p" ;; esac; \
	done; \
	status=0; \
	if [ -n "$$rapid" ]; then \
		echo "==> go test -rapid.checks=10000:" $$rapid; \
		$(GO) test -count=1 -timeout 120m $$rapid -rapid.checks=10000 || status=1; \
	fi; \
	if [ -n "$$plain" ]; then \
		echo "==> go test (packages without rapid)"; \
		$(GO) test -count=1 -timeout 120m $$plain || status=1; \
	fi; \
	exit $$status

## bench: run all benchmarks with allocation stats
bench:
	$(GO) test -run='^$$' -bench=. -benchmem ./...

## clean: remove build outputs
clean:
	rm -rf bin/
	rm -f *.test *.out

## help: list targets
help:
	@grep -E '^##' $(MAKEFILE_LIST) | sed -e 's/^## \{0,1\}/  /'
