# mk/bench.mk -- make bench: the yardstick (bench/README.md), not part of make
# test

BENCH_PKGS := wrk nginx-light openssl python3-torch python3-numpy python3-fastapi uvicorn \
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
