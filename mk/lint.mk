# mk/lint.mk -- make lint: openapi.yaml through @redocly/cli
# (recommended-strict, so a warning fails too) and docker/k8s/*.yaml against
# the Kubernetes API schemas (kubernetes-models), both pinned in
# tests/contract/package-lock.json and installed by npm ci.  Node.js and npm
# are the machine's; Debian's are installed only when there is no npm.

LINT_NODE = $(if $(shell command -v npm 2>/dev/null),,nodejs npm)

.PHONY: lint
lint:
	$(call apt_need,$(LINT_NODE))
	cd tests/contract && npm ci --no-audit --no-fund --prefer-offline --loglevel=error
	cd tests/contract && REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true \
		npx --no-install redocly lint --config redocly.yaml ../../openapi.yaml
	cd tests/contract && node k8s_schema.mjs
