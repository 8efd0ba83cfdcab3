# mk/deps.mk -- the Debian packages each target needs, installed when missing.
# Included by the Makefile; every harness under mk/ names its own packages and
# calls apt_need for them.

# libmicrohttpd is built from source (mk/mhd.mk): GnuTLS for its HTTPS,
# curl to fetch the tarball, patch for server/mhd/*.patch; zlib:
# Content-Encoding gzip/deflate both ways (server/encoding.c).
BUILD_PKGS := gcc g++ make libc6-dev libjansson-dev libdouble-conversion-dev \
	libfast-float-dev libgnutls28-dev pkg-config curl ca-certificates patch \
	zlib1g-dev
# libsodium: the reference the base64 codec (api/b64.c) is tested against;
# python3-cryptography and openssl: the TLS tests' throwaway CA and clients
TEST_PKGS  := check pkg-config python3 python3-pytest python3-yaml libsodium-dev \
	python3-jsonschema curl python3-cryptography openssl

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

.PHONY: deps test-deps
deps:
	$(call apt_need,$(BUILD_PKGS))
test-deps: deps
	$(call apt_need,$(TEST_PKGS))
