# Front door: `make test` and `make demo` install what is missing, configure, build and run.
#   LIBTORCH=debian (default): Debian's LibTorch 1.13, build folder build/
#   LIBTORCH=pip: PyPI's torch 2.11 in a cached virtual environment (scripts/install-torch),
#                 build folder build-pip/ (build-pip-cuda/ with CUDA=1: -DCGM_CUDA=ON)
LIBTORCH ?= debian
CUDA     ?= 0
ifeq ($(LIBTORCH),pip)
  ifeq ($(CUDA),1)
    BUILD ?= build-pip-cuda
  else
    BUILD ?= build-pip
  endif
else ifneq ($(LIBTORCH),debian)
  $(error LIBTORCH=$(LIBTORCH): expected debian or pip)
endif
BUILD ?= build
JOBS  ?= $(shell nproc)
CMAKE_FLAGS ?=
ifeq ($(CUDA),1)
  CMAKE_FLAGS += -DCGM_CUDA=ON
endif

.PHONY: all deps configure build test parity demo moe-study paper-t5 paper-beit bench bench-peer bench-long mutate sanitize fuzz clean

all: build

deps:
	@scripts/install-deps
ifeq ($(LIBTORCH),pip)
	@scripts/install-torch > /dev/null
endif

# The pip LibTorch is given as its package folder: its lib/ then comes before /usr/lib, where
# Debian's libtorch.so may also be.
$(BUILD)/build.ninja: | deps
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS) \
	  $(if $(filter pip,$(LIBTORCH)),-DCMAKE_PREFIX_PATH=$$(scripts/install-torch))

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

# The unit, parity and cli tests built with AddressSanitizer + UndefinedBehaviorSanitizer in
# build-asan/ (scripts/sanitize; suppressions for LibTorch internals in test/sanitize/).
sanitize: deps
	scripts/sanitize

# Every libFuzzer target of test/fuzz/ for FUZZ_SECONDS each (default 60) in build-fuzz/; installs
# clang and libFuzzer on first use (scripts/fuzz).
FUZZ_SECONDS ?= 60
fuzz: deps
	FUZZ_SECONDS=$(FUZZ_SECONDS) scripts/fuzz

demo: build
	scripts/demo $(BUILD)

# The gated modular MoE seed's MNIST study on Fashion-MNIST: five class-pair LoRA experts, gates of
# each kind over them, a table of test error and class x expert heatmaps (scripts/moe-study).
moe-study: build
	scripts/moe-study $(BUILD)

# The seeds' full-size experiments, one command each, given a Hugging Face model folder and the raw
# data as variables (see scripts/paper-t5, scripts/paper-beit), e.g. on a GPU machine:
#   make paper-t5 LIBTORCH=pip CUDA=1 T5_MODEL=t5-base CSQA=csqa MEDQA=medqa/US SCIENCEQA=sqa/problems.json
#   make paper-beit LIBTORCH=pip CUDA=1 BEIT_MODEL=beit-base-patch16-224 FIRE=FireRisk GAME=Gameplay
paper-t5: build
	scripts/paper-t5 $(BUILD)

paper-beit: build
	scripts/paper-beit $(BUILD)

bench: build
	$(BUILD)/bin/bench-t5 --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
	$(BUILD)/bin/bench-mixture --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
	$(BUILD)/bin/bench-beit --benchmark_repetitions=5 --benchmark_report_aggregates_only=true

# Ours against PEFT + transformers on the same LibTorch (PyPI's torch 2.11), a table each for T5
# and BEiT with FLOPs and the fraction of this machine's GEMM peak (scripts/peer-bench).
bench-peer:
	$(MAKE) build LIBTORCH=pip
	$$(scripts/install-torch --with-reference --python) scripts/peer-bench --ours build-pip/bin/bench-t5 \
	  --ours-beit build-pip/bin/bench-beit --threads $(JOBS)

# Peak memory and time against source length (1k to 32k tokens, batch 1) of random T5 shapes: ours
# (dense, query chunks, top-k) and transformers' T5, in bench/long/long-inputs.{md,csv,png}.
LONG_SHAPES  ?= configs/t5-tiny.json configs/t5-small.json
LONG_LENGTHS ?= 1024,2048,4096,8192,16384,32768
empty :=
space := $(empty) $(empty)
comma := ,
bench-long: build
	mkdir -p bench
	$$(scripts/install-torch --with-reference --python) scripts/long-input-peer $(foreach c,$(LONG_SHAPES),--config $(c)) \
	  --lengths $(LONG_LENGTHS) --out bench/long-peer.csv
	$(BUILD)/bin/benchmark --long-inputs --shapes $(subst $(space),$(comma),$(LONG_SHAPES)) --lengths $(LONG_LENGTHS) \
	  --more-results bench/long-peer.csv --out bench/long --overwrite

clean:
	rm -rf $(BUILD)
