# mk/docker.mk -- make docker-test: docker/Dockerfile built by podman from a
# debootstrap'd bookworm (no Docker engine, no registry) and served from the
# image by buildah (tests/docker/test_docker.py).  The base system is kept in
# build/docker/ so reruns take seconds; make clean removes it.

DOCKER_PKGS := podman buildah debootstrap python3 python3-pytest

.PHONY: docker-test
docker-test: | test-deps
	$(call apt_need,$(DOCKER_PKGS))
	DOCKER_CACHE=$(CURDIR)/build/docker \
		$(PYTHON) -m pytest -q -rs -s -p no:cacheprovider tests/docker
