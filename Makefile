# Glimpse — the two commands that matter:
#   make run    set up what is missing, build, and run `glimpse serve` with embedded defaults (data in ./data)
#   make test   set up what is missing, then run the whole test suite (what CI runs)
GO      ?= go
TAGS    ?= turbojpeg
BIN     ?= bin/glimpse
ADDR    ?= 127.0.0.1:8080
DATA    ?= ./data
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X github.com/glimpse-oss/glimpse/internal/cli.version=$(VERSION)
export CGO_ENABLED := 1

.PHONY: setup build run test test-short fuzz-short bench vet clean

setup:
	@bash scripts/setup.sh

build: setup
	$(GO) build -tags '$(TAGS)' -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/glimpse

run: build
	./$(BIN) serve --addr $(ADDR) --data $(DATA)

vet:
	@unformatted="$$(gofmt -l cmd internal e2e bench deploy)"; \
	if [ -n "$$unformatted" ]; then echo "gofmt wants to change:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet -tags '$(TAGS)' ./...

# The whole suite against real parts (model, ONNX Runtime, embedded JetStream, SQLite, the machine's NATS).
# GLIMPSE_STRICT_TESTS=1 turns a missing dependency into a failure instead of a skip.
test: setup vet
	GLIMPSE_STRICT_TESTS=1 $(GO) test -tags '$(TAGS)' -count=1 -timeout 30m ./...
	$(MAKE) --no-print-directory fuzz-short

# A short run of every fuzz target over its committed seed corpus plus fresh inputs. The budgets
# are counts of executions, not durations: Go 1.26's fuzz coordinator can fail a run with a bare
# "context deadline exceeded" when a duration ends while a worker is busy (go.dev/issue/75804,
# fixed in Go 1.27); a count has no deadline to race. Each is about 10 s on 2 cores.
FUZZ_DECODE ?= 300000x
FUZZ_UPLOAD ?= 10000x
FUZZ_PARSE  ?= 500000x
FUZZ_EXIF   ?= 300000x
fuzz-short:
	$(GO) test -tags '$(TAGS)' -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZ_DECODE) ./internal/imagedata
	$(GO) test -tags '$(TAGS)' -run '^$$' -fuzz '^FuzzUpload$$' -fuzztime $(FUZZ_UPLOAD) ./internal/web
	$(GO) test -tags '$(TAGS)' -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZ_PARSE) ./internal/s3event
	$(GO) test -tags '$(TAGS)' -run '^$$' -fuzz '^FuzzEXIF$$' -fuzztime $(FUZZ_EXIF) ./internal/analyzer/exif

test-short: setup
	GLIMPSE_STRICT_TESTS=1 $(GO) test -tags '$(TAGS)' -count=1 -short ./...

# Benchmarks print ratios against a reference measured in the same run (see bench/).
bench: build
	$(GO) run -tags '$(TAGS)' ./bench -bin $(BIN)

clean:
	rm -rf bin
