# mk/ui.mk -- make test-ui: the visualizer (GET /, web/index.html) in Debian's
# Chromium driven by playwright-core from npm (tests/ui/README.md); the last
# part of make test.  No browser download: playwright-core only.  Node.js and
# npm are the machine's; Debian's are installed only when there is no npm.

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
