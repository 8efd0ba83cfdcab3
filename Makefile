# attnd -- `make` builds build/attnd, `make run` serves, `make test` tests.
# Each installs the Debian packages it needs when they are missing.

CFLAGS  ?= -O2 -g
CFLAGS  += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Wshadow -Wno-unused-parameter
# (libmicrohttpd: build/mhd/lib/libmicrohttpd.a, a prerequisite of the links)
LDLIBS  += -lgnutls -ljansson -lsodium -ldouble-conversion -lstdc++ -lm -lpthread
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

BUILD_PKGS := gcc g++ make libc6-dev libjansson-dev libdouble-conversion-dev \
	libfast-float-dev libsodium-dev libgnutls28-dev pkg-config curl ca-certificates patch
TEST_PKGS  := check pkg-config python3 python3-pytest python3-yaml \
	python3-jsonschema python3-cryptography openssl curl

ENGINE := engine/engine.c engine/rng.c engine/rng_avx2.c
API    := api/api.c api/codec.c api/jsonw.c api/bow.c api/attention.c \
	api/multihead.c api/seed.c api/body.c api/f2s.c api/options.c \
	api/mask.c api/v2.c
SERVER := server/http.c server/route.c server/log.c server/metrics.c server/budget.c \
	server/tls.c server/auth.c server/headers.c server/probe.c
LIB_OBJ := $(patsubst %.c,$(B)/obj/%.o,$(ENGINE) $(API) $(SERVER)) \
	$(B)/obj/api/numtext.o $(B)/obj/server/assets.o
UNIT_SRC := $(wildcard tests/unit/*.c)

.PHONY: all run test unit e2e contract deps test-deps clean fuzz check-floats
all: $(B)/attnd

# Installs the packages in $(1) that dpkg does not have (apt-get update
# first: a new machine's lists may be empty; sudo when not root).
define apt_need
	@command -v dpkg-query >/dev/null || exit 0; missing=""; \
	for p in $(1); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | \
		grep -q "ok installed" || missing="$$missing $$p"; done; \
	[ -z "$$missing" ] && exit 0; \
	SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	echo "installing Debian packages:$$missing"; \
	$$SUDO apt-get update -qq && \
	$$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
		--no-install-recommends $$missing
endef

deps:
	$(call apt_need,$(BUILD_PKGS))
test-deps: deps
	$(call apt_need,$(TEST_PKGS))

# ==== libmicrohttpd 1.0.1, built from Debian trixie's source package ====
# bookworm's 0.9.75 parses HTTP leniently (CL+TE, bare CR, NULs, unknown
# transfer codings: README "Limits"); 1.0's rewritten parser refuses them
# (MHD_OPTION_CLIENT_DISCIPLINE_LVL).  Debian's orig tarball (Debian's own
# patches touch only tests and the man page), checked against the sha256 of
# trixie's Sources, from the Debian mirror of this machine's apt
# configuration, plus server/mhd/*.patch (its own error answers as JSON; a
# missing return that hung a chunk line too long); built once into
# build/mhd (shared by SAN=1: the library is not instrumented, ~20 s) and
# linked statically, with GnuTLS for HTTPS later.
MHD_VER    := 1.0.1
MHD_SHA256 := a89e09fc9b4de34dde19f4fcb4faaa1ce10299b9908db1132bbfa1de47882b94
MHD_MIRROR ?= $(or $(shell sed -n \
	-e 's,^URIs: *\(https\?://[^ ]*/debian\)/*$$,\1,p' \
	-e 's,^deb  *\(\[[^]]*\]  *\)\?\(https\?://[^ ]*/debian\)/*  *.*,\2,p' \
	/etc/apt/sources.list /etc/apt/sources.list.d/*.sources \
	/etc/apt/sources.list.d/*.list 2>/dev/null | head -1),http://deb.debian.org/debian)
MHD_TAR    := build/mhd/libmicrohttpd_$(MHD_VER).orig.tar.gz
MHD_LIB    := build/mhd/lib/libmicrohttpd.a
CFLAGS     += -Ibuild/mhd/include

$(MHD_TAR): | deps
	@mkdir -p $(dir $@)
	curl -fsSL --retry 3 -o $@.part \
		$(MHD_MIRROR)/pool/main/libm/libmicrohttpd/$(notdir $@)
	echo "$(MHD_SHA256)  $@.part" | sha256sum -c --quiet
	mv $@.part $@

$(MHD_LIB): $(MHD_TAR) $(wildcard server/mhd/*.patch)
	rm -rf build/mhd/src && mkdir -p build/mhd/src
	tar -xzf $< -C build/mhd/src --strip-components=1
	for p in $(sort $(wildcard server/mhd/*.patch)); do \
		patch -s -p1 -d build/mhd/src < $$p || exit 1; done
	cd build/mhd/src && CFLAGS='-O2 -g' ./configure -q --prefix=$(CURDIR)/build/mhd \
		--disable-shared --enable-static --with-pic --disable-doc \
		--disable-examples --disable-tools --disable-curl \
		--disable-postprocessor --disable-bauth --disable-dauth \
		--disable-cookie --enable-https --with-gnutls >/dev/null
	$(MAKE) -s -C build/mhd/src/src/microhttpd install >/dev/null
	$(MAKE) -s -C build/mhd/src/src/include install >/dev/null
	rm -rf build/mhd/src

# Objects depend on the Makefile too: a change of flags rebuilds them.
$(B)/obj/%.o: %.c Makefile | deps $(MHD_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

# The one C++ file: a C face on double-conversion and fast_float.
CXXFLAGS ?= -O2 -g
CXXFLAGS += -std=c++17 -Wall -Wextra -fno-exceptions -fno-rtti
ifeq ($(SAN),1)
CXXFLAGS += -fsanitize=address,undefined -fno-sanitize-recover=undefined
endif
$(B)/obj/%.o: %.cc Makefile | deps
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS) -MMD -MP -c $< -o $@

# Test sources include check.h: they wait for the test packages.
$(B)/obj/tests/%.o: tests/%.c Makefile | test-deps
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
$(B)/obj/engine/engine.o: CFLAGS += -O3

$(B)/obj/server/assets.o: server/assets.S openapi.yaml web/index.html | deps
	@mkdir -p $(dir $@)
	$(CC) -I. -c $< -o $@

$(B)/attnd: $(LIB_OBJ) $(B)/obj/server/main.o $(MHD_LIB)
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

# Check's flags are read when the recipe runs, after test-deps installed it.
CHECK_LIBS = $(shell pkg-config --libs check)
$(B)/test_unit: $(LIB_OBJ) $(patsubst %.c,$(B)/obj/%.o,$(UNIT_SRC)) $(MHD_LIB) | test-deps
	$(CC) $(LDFLAGS) $^ $(CHECK_LIBS) $(LDLIBS) -o $@ \
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

# All 2^32 float32 bit patterns through the response formatter (minutes).
$(B)/check_floats: tests/floats/check_floats.c $(B)/obj/api/f2s.o \
		$(B)/obj/api/numtext.o
	$(CC) $(CFLAGS) $^ -ldouble-conversion -lstdc++ -lm -o $@
check-floats: $(B)/check_floats
	./$(B)/check_floats

# libFuzzer over route + body -> response (tests/fuzz/README.md).
FUZZ_SECONDS ?= 600
FUZZ_PKGS := clang-14 libfuzzer-14-dev libclang-rt-14-dev
FUZZ_SAN := -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
build/fuzz/fuzz_request: tests/fuzz/fuzz_request.c $(ENGINE) $(API) \
		api/numtext.cc server/route.c server/metrics.c server/budget.c server/assets.S openapi.yaml \
		web/index.html | deps
	$(call apt_need,$(FUZZ_PKGS))
	@mkdir -p $(dir $@)
	clang++-14 -g -O1 -std=c++17 -fno-exceptions $(FUZZ_SAN) \
		-c api/numtext.cc -o build/fuzz/numtext.o
	clang-14 -g -O1 -std=c11 -D_GNU_SOURCE -I. -Wno-unknown-pragmas \
		$(FUZZ_SAN) tests/fuzz/fuzz_request.c $(ENGINE) $(API) \
		server/route.c server/metrics.c server/budget.c server/assets.S build/fuzz/numtext.o \
		-ljansson -lsodium -ldouble-conversion -lstdc++ -lm -o $@

fuzz: build/fuzz/fuzz_request
	rm -rf build/fuzz/seeds && tests/fuzz/make_corpus.sh build/fuzz/seeds
	@mkdir -p build/fuzz/corpus
	./build/fuzz/fuzz_request -max_total_time=$(FUZZ_SECONDS) -max_len=65536 \
		-timeout=10 -rss_limit_mb=4096 -artifact_prefix=build/fuzz/ \
		-print_final_stats=1 build/fuzz/corpus build/fuzz/seeds

clean:
	rm -rf build

-include $(shell find $(B)/obj -name '*.d' 2>/dev/null)

# ==== make bench: the yardstick (bench/README.md), not part of make test ====
BENCH_PKGS := wrk nginx-light openssl python3-torch python3-fastapi uvicorn
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

# ==== make soak: wrk against build/attnd for SOAK_SECONDS (tests/soak/README.md),
# not part of make test: valid and invalid requests checked one by one, no 5xx,
# no socket error, RSS back near its start, clean SIGTERM.  Exits non-zero otherwise.
# Then tests/hostile/soak_hostile.py: probes under 16 max-size bodies and every
# worker computing, slow clients cut, RSS after the loads, --grace (issue 15).
SOAK_SECONDS ?= 60
SOAK_PKGS    := wrk python3

.PHONY: soak soak-deps
soak-deps: deps
	$(call apt_need,$(SOAK_PKGS))

soak: $(B)/attnd | soak-deps
	ATTND_BIN=$(CURDIR)/$(B)/attnd PYTHON=$(PYTHON) SOAK_SECONDS=$(SOAK_SECONDS) \
		bash tests/soak/soak.sh
	OMP_WAIT_POLICY=PASSIVE ATTND_BIN=$(CURDIR)/$(B)/attnd HOSTILE_OUT=$(CURDIR)/$(B) \
		$(PYTHON) tests/hostile/soak_hostile.py

# ==== make test-ui: the visualizer (GET /, web/index.html) in Debian's
# Chromium driven by playwright-core from npm (tests/ui/README.md); the last
# part of make test.  No browser download: playwright-core only.  Node.js
# and npm are the machine's; Debian's are installed only when there is no npm.
UI_PKGS   := chromium curl
UI_NODE   = $(if $(shell command -v npm 2>/dev/null),,nodejs npm)
UI_OUT    ?= $(CURDIR)/$(B)/ui

.PHONY: test-ui ui-deps
ui-deps:
	$(call apt_need,$(UI_PKGS) $(UI_NODE))

test-ui: $(B)/attnd | ui-deps
	cd tests/ui && npm ci --no-audit --no-fund --prefer-offline --loglevel=error
	@mkdir -p $(UI_OUT)
	ATTND_BIN=$(CURDIR)/$(B)/attnd CHROMIUM=/usr/bin/chromium UI_OUT=$(UI_OUT) \
		node --test --test-concurrency=1 tests/ui/visualizer.test.mjs \
		tests/ui/apikey.test.mjs

# ==== make lint: openapi.yaml through @redocly/cli (recommended-strict, so a
# warning fails too) and docker/k8s/*.yaml against the Kubernetes API schemas
# (kubernetes-models), both pinned in tests/contract/package-lock.json and
# installed by npm ci.  Node.js and npm are the machine's; Debian's are
# installed only when there is no npm.
LINT_NODE = $(if $(shell command -v npm 2>/dev/null),,nodejs npm)

.PHONY: lint
lint:
	$(call apt_need,$(LINT_NODE))
	cd tests/contract && npm ci --no-audit --no-fund --prefer-offline --loglevel=error
	cd tests/contract && REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true \
		npx --no-install redocly lint --config redocly.yaml ../../openapi.yaml
	cd tests/contract && node k8s_schema.mjs

# ==== make lb-test: docker/nginx.conf (the compose balancer) run by Debian's
# nginx in front of three local attnd replicas (tests/lb/test_lb.py): answers
# correct, every replica used, one killed and one drained without a failed
# request.  Only loopback; only its own processes are stopped.
LB_PKGS := nginx-light python3 python3-pytest

.PHONY: lb-test
lb-test: $(B)/attnd | test-deps
	$(call apt_need,$(LB_PKGS))
	OMP_WAIT_POLICY=PASSIVE ATTND_BIN=$(CURDIR)/$(B)/attnd LB_OUT=$(CURDIR)/$(B)/lb \
		$(PYTHON) -m pytest -q -rs -p no:cacheprovider tests/lb

# ==== make docker-test: docker/Dockerfile built by podman from a debootstrap'd
# bookworm (no Docker engine, no registry) and served from the image by
# buildah (tests/docker/test_docker.py).  The base system is kept in
# build/docker/ so reruns take seconds; make clean removes it.
DOCKER_PKGS := podman buildah debootstrap python3 python3-pytest

.PHONY: docker-test
docker-test: | test-deps
	$(call apt_need,$(DOCKER_PKGS))
	DOCKER_CACHE=$(CURDIR)/build/docker \
		$(PYTHON) -m pytest -q -rs -s -p no:cacheprovider tests/docker
