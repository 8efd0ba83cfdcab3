# mk/lb.mk -- make lb-test: docker/nginx.conf (the compose balancer) run by
# Debian's nginx in front of three local attnd replicas (tests/lb/test_lb.py):
# answers correct, every replica used, one killed and one drained without a
# failed request.  Only loopback; only its own processes are stopped.

LB_PKGS := nginx-light python3 python3-pytest

.PHONY: lb-test
lb-test: $(B)/attnd | test-deps
	$(call apt_need,$(LB_PKGS))
	OMP_WAIT_POLICY=PASSIVE ATTND_BIN=$(CURDIR)/$(B)/attnd LB_OUT=$(CURDIR)/$(B)/lb \
		$(PYTHON) -m pytest -q -rs -p no:cacheprovider tests/lb
