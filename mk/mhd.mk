# mk/mhd.mk -- libmicrohttpd 1.0.1, built from Debian trixie's source package.
# Included by the Makefile: every object and link waits for $(MHD_LIB).
# bookworm's 0.9.75 parses HTTP leniently (CL+TE, bare CR, NULs, unknown
# transfer codings: docs/operations.md "Limits and robustness"); 1.0's
# rewritten parser refuses them
# (MHD_OPTION_CLIENT_DISCIPLINE_LVL).  Debian's orig tarball (Debian's own
# patches touch only tests and the man page), checked against the sha256 of
# trixie's Sources, from the Debian mirror of this machine's apt
# configuration, plus server/mhd/*.patch (its own error answers as JSON with
# attnd's headers; a missing return that hung a chunk line too long); built
# once into build/mhd (shared by SAN=1: the library is not instrumented,
# ~20 s) and linked statically, with GnuTLS for HTTPS (server/tls.c).
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
