# mk/bench.mk -- make bench: the yardstick (bench/README.md), not part of make
# test

BENCH_PKGS := wrk nginx-light python3-torch python3-numpy python3-fastapi uvicorn \
	libopenblas0-pthread
PEERS_DIR  ?= $(CURDIR)/../shared/peers

.PHONY: bench bench-deps
bench-deps: deps
	$(call apt_need,$(BENCH_PKGS))

$(B)/bench/engine_bench: bench/engine_bench.c $(B)/obj/engine/engine.o | deps
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Iengine $(LDFLAGS) $^ -lm -o $@

bench: $(B)/attnd $(B)/bench/engine_bench | bench-deps
	ATTND_BIN=$(CURDIR)/$(B)/attnd \
	ENGINE_BENCH=$(CURDIR)/$(B)/bench/engine_bench \
	BENCH_OUT=$(CURDIR)/$(B)/bench PYTHON=$(PYTHON) PEERS_DIR=$(PEERS_DIR) \
		bash bench/run.sh

# make bench-gpt: the shipped model's forward at T = block_size, attnd's
# engine and POST /gpt against PyTorch on the same exported file
# (bench/gpt_bench.sh).
$(B)/bench/gpt_bench: bench/gpt_bench.c $(B)/obj/api/gpt_model.o \
		$(B)/obj/api/safetensors.o $(B)/obj/engine/gpt.o \
		$(B)/obj/engine/engine.o $(B)/obj/engine/rng.o \
		$(B)/obj/engine/rng_avx2.o | deps
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) $^ -ljansson -lm -o $@

.PHONY: bench-gpt
bench-gpt: $(B)/bench/gpt_bench $(B)/attnd | bench-deps
	GPT_BENCH=$(CURDIR)/$(B)/bench/gpt_bench ATTND_BIN=$(CURDIR)/$(B)/attnd \
		PYTHON=$(PYTHON) bash bench/gpt_bench.sh
