# mk/soak.mk -- make soak: wrk against build/attnd for SOAK_SECONDS
# (tests/soak/README.md), not part of make test: valid and invalid requests
# checked one by one, no 5xx, no socket error, RSS back near its start, clean
# SIGTERM.  Exits non-zero otherwise.  Then tests/hostile/soak_hostile.py:
# probes under 16 max-size bodies and every worker computing, slow clients
# cut, RSS after the loads, --grace (issue 15).

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
