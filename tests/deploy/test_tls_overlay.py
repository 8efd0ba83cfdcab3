"""docker/k8s/tls (HTTPS and API keys from Secrets) against the base it
patches and against attnd: the patch names the base's Deployment and
container, sets only variables `attnd --help` documents, points them into
the Secrets it mounts (with the keys a kubernetes.io/tls Secret has), makes
both probes HTTPS on routes that need no key, and the Dockerfile shows the
same mount."""

import re
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "e2e"))
from attnd_e2e import attnd_bin  # noqa: E402

K8S = REPO / "docker" / "k8s"
OVERLAY = K8S / "tls"


def help_vars():
    out = subprocess.run([attnd_bin(), "--help"], capture_output=True, text=True, timeout=10).stdout
    return set(re.findall(r"\bATTND_[A-Z_]+\b", out))


def test_overlay_patches_the_base():
    kust = yaml.safe_load((OVERLAY / "kustomization.yaml").read_text())
    assert kust["resources"] == ["../"]
    patch_files = [p["path"] for p in kust["patches"] if "path" in p]
    assert patch_files == ["deployment-patch.yaml"]
    base = yaml.safe_load((K8S / "deployment.yaml").read_text())
    patch = yaml.safe_load((OVERLAY / "deployment-patch.yaml").read_text())
    assert (patch["kind"], patch["metadata"]["name"]) == (base["kind"], base["metadata"]["name"])
    base_c = base["spec"]["template"]["spec"]["containers"][0]
    spec = patch["spec"]["template"]["spec"]
    c = spec["containers"][0]
    assert c["name"] == base_c["name"]
    assert spec["securityContext"]["fsGroup"] == base["spec"]["template"]["spec"]["securityContext"]["runAsGroup"]

    env = {e["name"]: e["value"] for e in c["env"]}
    assert set(env) <= help_vars()
    assert set(env) >= {"ATTND_TLS_CERT", "ATTND_TLS_KEY", "ATTND_API_KEYS"}
    volumes = {v["name"]: v["secret"] for v in spec["volumes"]}
    mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
    assert set(mounts) == set(volumes)
    assert all(m["readOnly"] for m in c["volumeMounts"])
    # every file attnd is told to read is a key of a mounted Secret
    tls_files = {"tls.crt", "tls.key"}                # kubernetes.io/tls Secret keys
    for var, volume, names in (("ATTND_TLS_CERT", "tls", tls_files), ("ATTND_TLS_KEY", "tls", tls_files),
                               ("ATTND_API_KEYS", "api-keys", {"keys"})):
        d, f = env[var].rsplit("/", 1)
        assert d == mounts[volume] and f in names, (var, env[var])
        assert volumes[volume]["defaultMode"] & 0o007 == 0      # not world-readable
    # the probes: HTTPS, on the base's paths, which need no key
    for probe in ("readinessProbe", "livenessProbe"):
        assert c[probe]["httpGet"]["scheme"] == "HTTPS"
        assert base_c[probe]["httpGet"]["path"] in ("/healthz", "/readyz")
    # the secret names the patch mounts are the ones the instructions create
    text = (OVERLAY / "kustomization.yaml").read_text()
    for v in volumes.values():
        assert "secret tls %s " % v["secretName"] in text or "secret generic %s " % v["secretName"] in text


def test_dockerfile_shows_the_mount():
    text = (REPO / "docker" / "Dockerfile").read_text()
    for var in ("ATTND_TLS_CERT", "ATTND_TLS_KEY", "ATTND_API_KEYS"):
        assert re.search(r"^#.*-e %s=" % var, text, re.M), var
    assert re.search(r"^#.*-v .*:ro", text, re.M)
