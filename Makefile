# Front door: `make test` and `make demo` install what is missing, configure, build and run.
BUILD ?= build
JOBS  ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: all deps configure build test parity demo bench mutate clean

all: build

deps:
	@scripts/install-deps

$(BUILD)/build.ninja: | deps
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS)

configure: $(BUILD)/build.ninja

build: deps configure
	cmake --build $(BUILD) -j $(JOBS)

# Tests run one at a time: two multi-threaded LibTorch processes on 2 cores slow each other 3-8x.
test: build
	cd $(BUILD) && ctest --output-on-failure -j1

parity: build
	cd $(BUILD) && ctest --output-on-failure -L parity

# Plants each bug of test/mutations.txt in a copy of the sources and checks the suite catches it
# (slow: not part of `make test`).
mutate: deps
	scripts/mutate

demo: build
	scripts/demo $(BUILD)

bench: build
	$(BUILD)/bin/bench-t5 --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
	$(BUILD)/bin/bench-mixture --benchmark_repetitions=5 --benchmark_report_aggregates_only=true

clean:
	rm -rf $(BUILD)
