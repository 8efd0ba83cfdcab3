# mk/fuzz.mk -- make fuzz: libFuzzer over route + body -> response
# (tests/fuzz/README.md), FUZZ_SECONDS long; not part of make test.

.PHONY: fuzz
FUZZ_SECONDS ?= 600
FUZZ_PKGS := clang-14 libfuzzer-14-dev libclang-rt-14-dev
FUZZ_SAN := -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
build/fuzz/fuzz_request: tests/fuzz/fuzz_request.c $(ENGINE) $(API) \
		api/numtext.cc server/route.c server/metrics.c server/assets.S openapi.yaml \
		web/index.html | deps
	$(call apt_need,$(FUZZ_PKGS))
	@mkdir -p $(dir $@)
	clang++-14 -g -O1 -std=c++17 -fno-exceptions $(FUZZ_SAN) \
		-c api/numtext.cc -o build/fuzz/numtext.o
	clang-14 -g -O1 -std=c11 -D_GNU_SOURCE -I. -Wno-unknown-pragmas \
		$(FUZZ_SAN) tests/fuzz/fuzz_request.c $(ENGINE) $(API) \
		server/route.c server/metrics.c server/assets.S build/fuzz/numtext.o \
		-ljansson -ldouble-conversion -lstdc++ -lm -o $@

fuzz: build/fuzz/fuzz_request
	rm -rf build/fuzz/seeds && tests/fuzz/make_corpus.sh build/fuzz/seeds
	@mkdir -p build/fuzz/corpus
	./build/fuzz/fuzz_request -max_total_time=$(FUZZ_SECONDS) -max_len=65536 \
		-timeout=10 -rss_limit_mb=4096 -artifact_prefix=build/fuzz/ \
		-print_final_stats=1 build/fuzz/corpus build/fuzz/seeds

# make fuzz-safetensors: libFuzzer over the safetensors reader
# (tests/fuzz/README.md), seeded with the repository's exported models.
.PHONY: fuzz-safetensors
build/fuzz/fuzz_safetensors: tests/fuzz/fuzz_safetensors.c api/safetensors.c | deps
	$(call apt_need,$(FUZZ_PKGS))
	@mkdir -p $(dir $@)
	clang-14 -g -O1 -std=c11 -D_GNU_SOURCE -I. $(FUZZ_SAN) $^ -ljansson -o $@

fuzz-safetensors: build/fuzz/fuzz_safetensors
	rm -rf build/fuzz/st_seeds && mkdir -p build/fuzz/st_seeds build/fuzz/st_corpus
	for d in models/*/ tests/fixtures/gpt/models/*/; do \
		[ -f $$d/model.safetensors ] && cp $$d/model.safetensors \
			build/fuzz/st_seeds/$$(basename $$d).safetensors; done; true
	./build/fuzz/fuzz_safetensors -max_total_time=$(FUZZ_SECONDS) \
		-max_len=65536 -timeout=10 -artifact_prefix=build/fuzz/st- \
		-print_final_stats=1 build/fuzz/st_corpus build/fuzz/st_seeds
