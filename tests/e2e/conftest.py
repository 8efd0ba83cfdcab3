import os

import pytest

from attnd_e2e import REPO, AttndServer, attnd_bin


def _require_binary():
    b = attnd_bin()
    if not (os.path.isfile(b) and os.access(b, os.X_OK)):
        pytest.fail("attnd binary not found or not executable: %s (set ATTND_BIN or build it)" % b,
                    pytrace=False)


@pytest.fixture(scope="session")
def attnd_path():
    _require_binary()
    return attnd_bin()


def _serve(tmp_path_factory, name, args=()):
    _require_binary()
    workdir = tmp_path_factory.mktemp(name)
    try:
        srv = AttndServer(workdir, extra_args=args, name=name)
    except RuntimeError as e:
        pytest.fail(str(e), pytrace=False)
    return srv


def _shutdown(srv):
    alive_before = srv.alive()
    rc = srv.stop(10.0)
    assert alive_before, "attnd died during the session (rc=%s); stderr tail:\n%s" % (
        srv.proc.returncode, srv.stderr_text()[-3000:])
    assert rc is not None, "attnd did not exit within 10 s of SIGTERM"
    assert rc == 0, "attnd exited with %r after SIGTERM; stderr tail:\n%s" % (rc, srv.stderr_text()[-3000:])


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """The main attnd instance, default limits, serving the shipped model
    repository as `make run` does (the documents' /gpt examples use it)."""
    srv = _serve(tmp_path_factory, "main", ["--models", str(REPO / "models")])
    yield srv
    _shutdown(srv)


@pytest.fixture(scope="session")
def small_server(tmp_path_factory):
    """A second instance with tiny limits: --max-body 1000 --max-elements 100, and
    --max-total-elements 40000: the engine's attention scratch (packed weights
    and keys, per-thread tiles of ~8000 floats) is counted in the total, so the
    default 4 x --max-elements (400) would refuse every attention request."""
    srv = _serve(tmp_path_factory, "small", ["--max-body", "1000", "--max-elements", "100",
                                             "--max-total-elements", "40000"])
    yield srv
    _shutdown(srv)
