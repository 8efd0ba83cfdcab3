# attnd -- `make` builds build/attnd, `make run` serves, `make test` tests.
# Each installs the Debian packages it needs when they are missing
# (mk/deps.mk).  This file is the build; the other harnesses (test-ui, lint,
# lb-test, docker-test, fuzz, check-floats, bench, soak) are in mk/, one file
# each, and docs/testing.md says what each one checks.

CFLAGS  ?= -O2 -g
CFLAGS  += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Wshadow -Wno-unused-parameter
# libmicrohttpd: build/mhd/lib/libmicrohttpd.a (mk/mhd.mk), a prerequisite
# of the links; GnuTLS for its HTTPS; zlib for Content-Encoding.
LDLIBS  += -lgnutls -ljansson -lz -lstdc++ -lm -lpthread
PYTHON  ?= /usr/bin/python3
PORT    ?= 8080

# SAN=1: AddressSanitizer + UndefinedBehaviorSanitizer (leak checking on),
# in its own tree so sanitized and plain objects never mix.
ifeq ($(SAN),1)
B       := build/san
CFLAGS  += -fsanitize=address,undefined -fno-sanitize-recover=undefined \
	-fno-omit-frame-pointer
LDFLAGS += -fsanitize=address,undefined
else
B       := build
endif

# OpenMP unless NO_OMP=1 or the compiler lacks it.  No -ffast-math: it
# folds isinf/isnan away and breaks the -inf causal mask.
ifneq ($(NO_OMP),1)
OMPFLAGS := $(shell echo 'int main(void){return 0;}' | \
	$(CC) -fopenmp -x c - -o /dev/null 2>/dev/null && echo -fopenmp)
endif
CFLAGS  += $(OMPFLAGS)
LDFLAGS += $(OMPFLAGS)

ENGINE := engine/engine.c engine/rng.c engine/rng_avx2.c engine/gpt.c
API    := api/api.c api/codec.c api/jsonw.c api/model.c api/native.c \
	api/randn.c api/seed.c api/body.c api/f2s.c api/options.c \
	api/mask.c api/v2.c api/v2_request.c api/v2_ext.c api/stats.c \
	api/b64.c api/safetensors.c api/gpt_model.c api/lecture.c api/repo.c \
	api/parse.c
SERVER := server/http.c server/route.c server/log.c server/metrics.c \
	server/ident.c server/encoding.c server/budget.c server/tls.c \
	server/auth.c server/headers.c server/probe.c
LIB_OBJ := $(patsubst %.c,$(B)/obj/%.o,$(ENGINE) $(API) $(SERVER)) \
	$(B)/obj/api/numtext.o $(B)/obj/server/assets.o
UNIT_SRC := $(wildcard tests/unit/*.c)

.PHONY: all run test unit e2e contract clean
all: $(B)/attnd

# apt_need, deps, test-deps: the packages of the build and of the tests.
include mk/deps.mk
# libmicrohttpd 1.0.1 from Debian's source into build/mhd, linked statically.
include mk/mhd.mk

# Objects depend on the Makefile too: a change of flags rebuilds them.
$(B)/obj/%.o: %.c Makefile | deps $(MHD_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

# The C++ files: a C face on fast_float (numtext.cc, the server) and on
# double-conversion (numtext_ref.cc, the tests' reference).
CXXFLAGS ?= -O2 -g
CXXFLAGS += -std=c++17 -Wall -Wextra -fno-exceptions -fno-rtti
ifeq ($(SAN),1)
CXXFLAGS += -fsanitize=address,undefined -fno-sanitize-recover=undefined
endif
$(B)/obj/%.o: %.cc Makefile | deps
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS) -MMD -MP -c $< -o $@

# Test sources include check.h: they wait for the test packages.
$(B)/obj/tests/%.o: tests/%.c Makefile | test-deps $(MHD_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

# torch.randn bit for bit: rng.c writes every FMA PyTorch's AVX2 build has
# and no compiler may add one (-ffp-contract=off); rng_avx2.c gets AVX2+FMA
# when the compiler takes them and checks the CPU before using them.
AVX2FLAGS := $(shell echo 'int main(void){return 0;}' | \
	$(CC) -mavx2 -mfma -x c - -o /dev/null 2>/dev/null && echo -mavx2 -mfma)
$(B)/obj/engine/rng.o $(B)/obj/engine/rng_avx2.o: CFLAGS += -ffp-contract=off
$(B)/obj/engine/rng_avx2.o: CFLAGS += $(AVX2FLAGS)

# The attention kernels are written to vectorise; -O2's very-cheap cost
# model refuses loops that need a remainder, so the engine gets -O3.
# -Wno-psabi: the baseline copy of engine/attend_fast.inc passes 32-byte
# vectors only between always_inline functions, so no ABI is crossed.
$(B)/obj/engine/engine.o: CFLAGS += -O3 -Wno-psabi
$(B)/obj/engine/gpt.o: CFLAGS += -O3

$(B)/obj/server/assets.o: server/assets.S openapi.yaml web/index.html | deps
	@mkdir -p $(dir $@)
	$(CC) -I. -c $< -o $@

$(B)/attnd: $(LIB_OBJ) $(B)/obj/server/main.o $(MHD_LIB)
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

# Check's flags are read when the recipe runs, after test-deps installed it.
CHECK_LIBS = $(shell pkg-config --libs check)
# numtext_ref.o (double-conversion): f2s's reference, in tests only.
$(B)/test_unit: $(LIB_OBJ) $(patsubst %.c,$(B)/obj/%.o,$(UNIT_SRC)) \
		$(B)/obj/api/numtext_ref.o $(MHD_LIB) | test-deps
	$(CC) $(LDFLAGS) $^ $(CHECK_LIBS) -lsodium -ldouble-conversion \
		$(LDLIBS) -o $@ \
		-Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=free

run: $(B)/attnd
	OMP_WAIT_POLICY=PASSIVE ./$(B)/attnd --port $(PORT)

unit: $(B)/test_unit
	./$(B)/test_unit

e2e: $(B)/attnd | test-deps
	OMP_WAIT_POLICY=PASSIVE ATTND_BIN=$(CURDIR)/$(B)/attnd \
		$(PYTHON) -m pytest -q -p no:cacheprovider tests/e2e

# The contract (every example of openapi.yaml sent to a real server and
# checked against its schema) and the deployment files' cross-checks.
contract: $(B)/attnd | test-deps
	OMP_WAIT_POLICY=PASSIVE ATTND_BIN=$(CURDIR)/$(B)/attnd ATTND_SANITIZED=$(SAN) \
		$(PYTHON) -m pytest -q -rs -p no:cacheprovider tests/contract tests/deploy

test: unit e2e contract test-ui

clean:
	rm -rf build

-include $(shell find $(B)/obj -name '*.d' 2>/dev/null)

# ==== The harnesses, one file each ====
include mk/ui.mk                         # test-ui: the last part of make test
include mk/lint.mk mk/lb.mk mk/docker.mk # lint, lb-test, docker-test: CI's
include mk/fuzz.mk mk/floats.mk          # fuzz, check-floats: by hand
include mk/bench.mk mk/soak.mk           # bench, soak: by hand, a quiet machine
include mk/diff.mk                       # diff, b64-bench: by hand
