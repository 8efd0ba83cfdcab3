"""make docker-test: docker/Dockerfile built and served for real, without a
Docker engine or a registry.

1. debootstrap --variant=minbase bookworm ROOT  (Debian's own archive; kept
   in build/docker/rootfs, so reruns skip it)
2. tar -C ROOT -c . | podman import - docker.io/library/debian:bookworm-slim
   (with a LABEL marking the images this test makes; the imported image's
   id is kept, and retagged on reruns instead of importing again, so
   podman's layer cache stays valid; a new import removes the previous
   generation of images)
3. podman build --isolation=chroot --network=host -f docker/Dockerfile .
   (plus --pull=never: nothing may come from a registry; --format docker:
   the OCI format drops HEALTHCHECK)
4. buildah from IMAGE, then buildah run --isolation=chroot --network=host
   CONTAINER attnd: the server from the image, configured by environment,
   on a free 127.0.0.1 port (plain `podman run` fails here on cgroups and
   rlimits).

Then: the image's metadata (non-root user, port, health check), its
contents (libraries, no compiler, no curl), /healthz, /readyz, a real
/attention fixture within 1e-5, /metrics, the image's own HEALTHCHECK
command run in the container (passes against the server, fails without
one), and a clean SIGTERM shutdown.  Then HTTPS from the image: a pair
and a key file made by the test (throwaway CA) mounted read-only, served
to a verifying client with a key, and the HEALTHCHECK over HTTPS.  The
container is removed at the end.
"""

import hashlib
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "e2e"))
from attnd_e2e import compare, free_port  # noqa: E402

CACHE = Path(os.environ.get("DOCKER_CACHE") or REPO / "build" / "docker")
ROOT = CACHE / "rootfs"
BASE = "docker.io/library/debian:bookworm-slim"
IMAGE = "localhost/attnd:docker-test"
LABEL = "io.attnd.docker-test=1"
MIRROR = os.environ.get("DEBOOTSTRAP_MIRROR", "http://deb.debian.org/debian")
FIXTURE = REPO / "tests" / "fixtures" / "attention" / "seeded_lecture_1337.json"


def sh(cmd, log=None, check=True, **kw):
    """Runs cmd, its output to log (appended) or captured; returns it."""
    t0 = time.monotonic()
    if log:
        with open(log, "ab") as f:
            f.write(("\n$ %s\n" % " ".join(map(str, cmd))).encode())
            f.flush()
            p = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, **kw)
        out = ""
    else:
        p = subprocess.run(cmd, capture_output=True, text=True, **kw)
        out = p.stdout
    print("docker-test: %-70.70s %.1fs" % (" ".join(map(str, cmd)), time.monotonic() - t0))
    if check and p.returncode != 0:
        tail = Path(log).read_text(errors="replace")[-4000:] if log else p.stderr[-4000:]
        raise AssertionError("%s exited %d:\n%s" % (cmd, p.returncode, tail))
    return out if not log else p.returncode


def podman_has(ref):
    return subprocess.run(["podman", "image", "exists", ref]).returncode == 0


@pytest.fixture(scope="module")
def image():
    for tool in ("podman", "buildah", "debootstrap"):
        assert shutil.which(tool), "%s missing (make docker-test installs it)" % tool
    CACHE.mkdir(parents=True, exist_ok=True)
    log = CACHE / "build.log"
    log.write_text("")

    # 1. the base system, once
    done = CACHE / "rootfs.done"
    if not done.exists():
        if ROOT.exists():
            shutil.rmtree(ROOT)             # an interrupted debootstrap
        sh(["debootstrap", "--variant=minbase", "bookworm", str(ROOT), MIRROR], log=log)
        done.write_text(time.strftime("%Y-%m-%d %H:%M:%S\n"))

    # 2. imported as debian:bookworm-slim (retagged when already imported)
    idfile = CACHE / "base.id"
    base_id = idfile.read_text().strip() if idfile.exists() else ""
    if base_id and done.stat().st_mtime <= idfile.stat().st_mtime and podman_has(base_id):
        sh(["podman", "tag", base_id, BASE])
    else:
        # Every image this test makes carries LABEL (the base's label is
        # inherited by the build's stages): a new import replaces the
        # previous generation, so podman's storage does not grow run by run.
        stale = sh(["podman", "images", "-a", "-q", "--filter", "label=" + LABEL]).split()
        tar = subprocess.Popen(["tar", "-C", str(ROOT), "-c", "."], stdout=subprocess.PIPE)
        out = subprocess.run(["podman", "import", "--change", "LABEL " + LABEL, "-", BASE],
                             stdin=tar.stdout, capture_output=True, text=True)
        tar.stdout.close()
        assert tar.wait() == 0 and out.returncode == 0, out.stderr
        base_id = out.stdout.strip().splitlines()[-1]
        idfile.write_text(base_id + "\n")
        print("docker-test: imported %s as %s" % (base_id[:19], BASE))
        if stale:
            subprocess.run(["podman", "rmi", "-f"] + sorted(set(stale)), capture_output=True)
            print("docker-test: removed %d images of the previous generation" % len(set(stale)))

    # 3. the Dockerfile, unchanged
    old = sh(["podman", "image", "inspect", "--format", "{{.Id}}", IMAGE], check=False).strip()
    sh(["podman", "build", "--isolation=chroot", "--network=host", "--pull=never",
        "--format", "docker", "-t", IMAGE, "-f", "docker/Dockerfile", "."], log=log, cwd=REPO)
    info = json.loads(sh(["podman", "image", "inspect", IMAGE]))[0]
    if old and old != info["Id"]:
        subprocess.run(["podman", "rmi", old], capture_output=True)   # the previous build's
    print("docker-test: image %s, %.0f MB" % (info["Id"][:12], info["Size"] / 1e6))
    return info


@pytest.fixture(scope="module")
def container(image):
    name = "attnd-docker-test-%d" % os.getpid()
    subprocess.run(["buildah", "rm", name], capture_output=True)
    sh(["buildah", "from", "--pull=never", "--name", name, IMAGE])
    yield name
    sh(["buildah", "rm", name])


def run_in(container, *cmd, env=(), timeout=60):
    args = ["buildah", "run", "--isolation=chroot", "--network=host"]
    for e in env:
        args += ["-e", e]
    return subprocess.run(args + [container, "--"] + list(cmd), capture_output=True, text=True,
                          timeout=timeout)


def descendants(pid):
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        for task in Path("/proc/%d/task" % p).glob("*"):
            try:
                kids = [int(k) for k in (task / "children").read_text().split()]
            except OSError:
                kids = []
            out += kids
            todo += kids
    return out


def fetch(port, method, path, body=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        c.request(method, path, body=None if body is None else json.dumps(body),
                  headers={"Content-Type": "application/json"} if body is not None else {})
        r = c.getresponse()
        return r.status, r.read(), r.headers
    finally:
        c.close()


@pytest.fixture(scope="module")
def server(container):
    port = free_port()
    log = CACHE / "serve.log"
    out = open(log, "wb")
    env = ["ATTND_PORT=%d" % port, "ATTND_HOST=127.0.0.1", "ATTND_LOG_FORMAT=json",
           "ATTND_THREADS=2"]
    args = ["buildah", "run", "--isolation=chroot", "--network=host"]
    for e in env:
        args += ["-e", e]
    proc = subprocess.Popen(args + [container, "--", "/usr/local/bin/attnd"], stdout=out,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    state = {"port": port, "proc": proc, "log": log, "env": env}
    deadline = time.monotonic() + 60
    while True:
        assert proc.poll() is None, "the server exited:\n" + log.read_text(errors="replace")
        try:
            if fetch(port, "GET", "/healthz")[0] == 200:
                break
        except OSError:
            pass
        assert time.monotonic() < deadline, "no /healthz within 60 s:\n" + log.read_text(errors="replace")
        time.sleep(0.1)
    yield state
    if proc.poll() is None:                 # a test failed before the shutdown one
        for pid in reversed(descendants(proc.pid)):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        proc.kill()
        proc.wait()
    out.close()


def test_image_metadata(image):
    cfg = image["Config"]
    assert cfg["User"] == "10001:10001"
    assert "8080/tcp" in cfg["ExposedPorts"]
    assert cfg["Entrypoint"] == ["/usr/local/bin/attnd"]
    assert "OMP_WAIT_POLICY=PASSIVE" in cfg["Env"] and "ATTND_PORT=8080" in cfg["Env"]
    hc = image.get("Healthcheck") or cfg.get("Healthcheck")
    assert hc and hc["Test"] == ["CMD", "/usr/local/bin/attnd", "--healthcheck"], hc


def test_image_contents(container):
    r = run_in(container, "/bin/sh", "-c",
               "id -u; ldd /usr/local/bin/attnd; for t in gcc cc make curl wget; do "
               "command -v $t && echo HAS $t; done; dpkg-query -W -f '${Package}\\n' | grep -- '-dev$' || true")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "10001"
    assert "not found" not in r.stdout, r.stdout
    for lib in ("libgnutls.so.30", "libjansson.so.4", "libgomp.so.1", "libz.so.1"):
        assert lib in r.stdout, (lib, r.stdout)
    # libmicrohttpd 1.0.1 is linked in statically; double-conversion and
    # libsodium are the tests' only (and numtext.cc needs nothing of
    # libstdc++ at run time: the linker's --as-needed drops it)
    for lib in ("libmicrohttpd", "libdouble-conversion", "libsodium"):
        assert lib not in r.stdout, (lib, r.stdout)
    assert not [l for l in lines if l.startswith("HAS ") or l.endswith("-dev")], r.stdout


def test_healthz_readyz(server):
    assert fetch(server["port"], "GET", "/healthz")[:2] == (200, b'{"status":"ok"}')
    assert fetch(server["port"], "GET", "/readyz")[:2] == (200, b'{"status":"ready"}')


def test_attention_fixture(server):
    fx = json.loads(FIXTURE.read_text())
    status, data, _ = fetch(server["port"], "POST", "/attention", fx["request"])
    assert status == 200, data[:300]
    diffs = compare(fx["expect"], json.loads(data))
    assert not diffs, diffs[:5]


def test_metrics(server):
    status, data, headers = fetch(server["port"], "GET", "/metrics")
    assert status == 200 and headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert b'attnd_requests_total{route="/attention",method="POST",status="200"} 1\n' in data


def test_image_healthcheck(image, container, server):
    """The HEALTHCHECK the image declares, run in the container as Docker
    would: it passes while the server answers, and fails with no server."""
    test = (image.get("Healthcheck") or image["Config"]["Healthcheck"])["Test"]
    assert test[0] == "CMD"
    r = run_in(container, *test[1:], env=["ATTND_PORT=%d" % server["port"]], timeout=30)
    assert r.returncode == 0, (r.stdout, r.stderr)
    r = run_in(container, *test[1:], env=["ATTND_PORT=%d" % free_port()], timeout=30)
    assert r.returncode != 0


def test_sigterm(server):
    """SIGTERM to attnd (buildah itself does not forward it): exit 0, and the
    JSON log (ATTND_LOG_FORMAT from the environment) ends with the stop."""
    proc = server["proc"]
    attnd = [p for p in descendants(proc.pid)
             if Path("/proc/%d/comm" % p).read_text().strip() == "attnd"]
    assert len(attnd) == 1, attnd
    os.kill(attnd[0], signal.SIGTERM)
    assert proc.wait(30) == 0
    lines = server["log"].read_text().splitlines()
    objs = [json.loads(l) for l in lines if l.startswith("{")]
    assert objs and objs[-1]["msg"] == "attnd: stopped", lines[-5:]
    access = [o for o in objs if "method" in o]
    assert any(o["path"] == "/attention" and o["status"] == 200 and o["remote"] == "127.0.0.1"
               for o in access), access


def test_https_with_a_mounted_pair(image, container, tmp_path):
    """The image serves HTTPS from a pair and a key file mounted read-only
    (as the Dockerfile's header shows), and its HEALTHCHECK speaks HTTPS."""
    from secure_e2e import CA, KEY_A
    import ssl
    secrets = tmp_path / "secrets"
    ca = CA(secrets)
    cert, key = ca.issue("server")
    (secrets / "keys").write_text(KEY_A + "\n")
    for f in secrets.iterdir():
        f.chmod(0o644)          # readable by the image's uid 10001
    secrets.chmod(0o755)
    port = free_port()
    env = ["ATTND_PORT=%d" % port, "ATTND_HOST=127.0.0.1", "ATTND_THREADS=2",
           "ATTND_TLS_CERT=/etc/attnd/server.pem", "ATTND_TLS_KEY=/etc/attnd/server.key",
           "ATTND_API_KEYS=/etc/attnd/keys"]
    args = ["buildah", "run", "--isolation=chroot", "--network=host",
            "-v", "%s:/etc/attnd:ro" % secrets]
    for e in env:
        args += ["-e", e]
    log = CACHE / "serve-https.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(args + [container, "--", "/usr/local/bin/attnd"], stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, "the server exited:\n" + log.read_text(errors="replace")
            try:
                c = http.client.HTTPSConnection("localhost", port, timeout=10, context=ca.client_context())
                c.request("POST", "/randn", body=json.dumps({"seed": 1, "shape": [2]}),
                          headers={"Content-Type": "application/json", "Authorization": "Bearer " + KEY_A})
                r = c.getresponse()
                body = r.read()
                c.close()
                break
            except (OSError, ssl.SSLError):
                assert time.monotonic() < deadline, "no HTTPS within 60 s:\n" + log.read_text(errors="replace")
                time.sleep(0.1)
        assert r.status == 200 and json.loads(body)["shape"] == [2], body[:300]
        test = (image.get("Healthcheck") or image["Config"]["Healthcheck"])["Test"]
        hc = run_in(container, *test[1:], env=env[:2] + ["ATTND_TLS_CERT=/etc/attnd/server.pem"], timeout=30)
        assert hc.returncode == 0, (hc.stdout, hc.stderr)
        # the same check without TLS fails against the HTTPS port
        hc = run_in(container, *test[1:], env=env[:2], timeout=30)
        assert hc.returncode != 0
    finally:
        for pid in reversed(descendants(proc.pid)):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
