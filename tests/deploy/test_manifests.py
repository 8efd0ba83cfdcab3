"""The deployment files parse and agree with each other and with attnd.

docker/compose.yaml, docker/k8s/*.yaml and docker/Dockerfile are not run
by make test (make docker-test builds the image, make lb-test runs
docker/nginx.conf, make lint checks the Kubernetes objects against the API
schemas); this checks what ties them together: every ATTND_* variable they
set is one `attnd --help` documents, the probes name endpoints openapi.yaml
has, ports, users and grace periods match.
"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "e2e"))
from attnd_e2e import attnd_bin  # noqa: E402

DOCKER = REPO / "docker"


def load_all(path):
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def help_vars():
    out = subprocess.run([attnd_bin(), "--help"], capture_output=True, text=True, timeout=10).stdout
    return set(re.findall(r"\bATTND_[A-Z_]+\b", out))


def k8s():
    objs = {}
    for f in sorted((DOCKER / "k8s").glob("*.yaml")):
        for d in load_all(f):
            objs[d["kind"]] = d
    return objs


def env_map(env_list):
    return {e["name"]: e["value"] for e in env_list}


def test_every_yaml_parses():
    files = [DOCKER / "compose.yaml", REPO / "openapi.yaml"] + sorted((DOCKER / "k8s").glob("*.yaml"))
    for f in files:
        assert load_all(f), "%s: empty" % f
    assert set(k8s()) == {"Deployment", "Service", "HorizontalPodAutoscaler", "Kustomization"}


def test_dockerfile():
    text = (DOCKER / "Dockerfile").read_text()
    froms = re.findall(r"^FROM\s+(\S+)", text, re.M)
    assert froms == ["debian:bookworm-slim", "debian:bookworm-slim"], froms
    code = "\n".join(l for l in text.splitlines() if not l.lstrip().startswith("#"))
    runtime = code.split("\nFROM ")[-1]
    pkgs = re.search(r"apt-get install[^\n]*\n\s*(.*?)\s*\\?\n", runtime).group(1).split()
    assert pkgs == ["libgnutls30", "libjansson4", "libgomp1",
                    "libstdc++6", "zlib1g"], pkgs
    assert not re.search(r"-dev\b|\bgcc\b|\bcurl\b", runtime), "the runtime stage installs more than libraries"
    assert re.search(r"^USER 10001:10001$", runtime, re.M)
    assert re.search(r"^EXPOSE 8080$", runtime, re.M)
    assert re.search(r'^HEALTHCHECK .*CMD \["/usr/local/bin/attnd", "--healthcheck"\]', runtime, re.M | re.S)
    # every directory assets.S embeds is copied into the build stage
    for inc in re.findall(r'\.incbin "([^"/]+)/', (REPO / "server" / "assets.S").read_text()):
        assert re.search(r"^COPY %s %s$" % (inc, inc), text, re.M), "Dockerfile does not COPY %s" % inc
    # and every directory of the files the Makefile includes (mk/): make reads them all
    for line in re.findall(r"^include\s+([^#\n]*)", (REPO / "Makefile").read_text(), re.M):
        for inc in line.split():
            d = inc.split("/")[0]
            assert re.search(r"^COPY %s %s$" % (d, d), text, re.M), "Dockerfile does not COPY %s" % d


def test_env_vars_are_attnds():
    known = help_vars()
    assert "ATTND_LOG_FORMAT" in known and "ATTND_DRAIN_DELAY" in known
    compose = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    dep = k8s()["Deployment"]
    container = dep["spec"]["template"]["spec"]["containers"][0]
    for where, env in (("compose", compose["services"]["attnd"]["environment"]),
                       ("deployment", env_map(container["env"]))):
        for name in env:
            assert name in known or name == "OMP_WAIT_POLICY", "%s sets %s, which attnd does not read" % (where, name)
    dockerfile_env = re.findall(r"\b(ATTND_[A-Z_]+)=", (DOCKER / "Dockerfile").read_text())
    assert set(dockerfile_env) <= known


def test_compose():
    c = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    attnd, lb = c["services"]["attnd"], c["services"]["lb"]
    assert (DOCKER / attnd["build"]["context"] / attnd["build"]["dockerfile"]).is_file()
    assert attnd["deploy"]["replicas"] >= 2
    assert attnd["environment"]["ATTND_PORT"] == "8080"
    src, dst = lb["volumes"][0].split(":")[:2]
    assert (DOCKER / src).resolve() == (DOCKER / "nginx.conf").resolve()
    assert dst == "/etc/nginx/conf.d/default.conf"
    assert lb["depends_on"]["attnd"]["condition"] == "service_healthy"
    grace = int(attnd["environment"]["ATTND_DRAIN_DELAY"]) + int(attnd["environment"]["ATTND_GRACE"])
    assert int(attnd["stop_grace_period"].rstrip("s")) > grace
    # nginx.conf's upstream is the attnd service on its port
    conf = (DOCKER / "nginx.conf").read_text()
    assert re.search(r"^\s*server attnd:8080 ", conf, re.M)
    # the nginx image is the version make lb-test runs
    nginx = shutil.which("nginx")
    if nginx:
        v = subprocess.run([nginx, "-v"], capture_output=True, text=True).stderr
        assert lb["image"].split(":")[1] in v, (lb["image"], v)


def test_kubernetes():
    objs = k8s()
    dep, svc, hpa = objs["Deployment"], objs["Service"], objs["HorizontalPodAutoscaler"]
    spec = dep["spec"]["template"]["spec"]
    c = spec["containers"][0]
    env = env_map(c["env"])
    paths = yaml.safe_load((REPO / "openapi.yaml").read_text())["paths"]
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz" and "/readyz" in paths
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz" and "/healthz" in paths
    port = c["ports"][0]
    assert port["containerPort"] == int(env["ATTND_PORT"]) == 8080
    assert svc["spec"]["ports"][0]["targetPort"] == port["name"]
    assert svc["spec"]["selector"] == dep["spec"]["selector"]["matchLabels"]
    assert hpa["spec"]["scaleTargetRef"]["name"] == dep["metadata"]["name"]
    assert spec["terminationGracePeriodSeconds"] > int(env["ATTND_DRAIN_DELAY"]) + int(env["ATTND_GRACE"])
    assert spec["securityContext"]["runAsUser"] == 10001      # the image's USER
    for k in ("cpu", "memory"):
        assert c["resources"]["requests"][k] and c["resources"]["limits"][k]
    assert int(env["ATTND_THREADS"]) >= 1
