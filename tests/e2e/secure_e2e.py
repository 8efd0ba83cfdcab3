"""Helpers for the TLS, API key and CORS tests: a throwaway CA and server
certificates made by the test (Debian's python3-cryptography), and an
AttndServer spoken to over HTTPS."""

import datetime
import http.client
import ssl
import time
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from attnd_e2e import AttndServer, do_request

KEY_A = "test-key-alpha-0123456789abcdef"
KEY_B = "test-key-bravo-fedcba9876543210"


def _name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _pem_key(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


class CA:
    """A certificate authority that exists for one test session."""

    def __init__(self, workdir):
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.timezone.utc)
        self.cert = (x509.CertificateBuilder()
                     .subject_name(_name("attnd throwaway test CA"))
                     .issuer_name(_name("attnd throwaway test CA"))
                     .public_key(self.key.public_key())
                     .serial_number(x509.random_serial_number())
                     .not_valid_before(now - datetime.timedelta(days=1))
                     .not_valid_after(now + datetime.timedelta(days=30))
                     .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                     .sign(self.key, hashes.SHA256()))
        self.pem_path = self.dir / "ca.pem"
        self.pem_path.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))

    def issue(self, name, cn="localhost", days=(-1, 30), key=None, password=None):
        """Writes <name>.pem and <name>.key for a server certificate valid
        for localhost and 127.0.0.1 from now+days[0] to now+days[1]; returns
        (cert_path, key_path)."""
        key = key or ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.timezone.utc)
        import ipaddress
        cert = (x509.CertificateBuilder()
                .subject_name(_name(cn))
                .issuer_name(self.cert.subject)
                .public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now + datetime.timedelta(days=days[0]))
                .not_valid_after(now + datetime.timedelta(days=days[1]))
                .add_extension(x509.SubjectAlternativeName([
                    x509.DNSName("localhost"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
                .sign(self.key, hashes.SHA256()))
        cp, kp = self.dir / (name + ".pem"), self.dir / (name + ".key")
        cp.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        if password:
            kp.write_bytes(key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                serialization.BestAvailableEncryption(password.encode())))
        else:
            kp.write_bytes(_pem_key(key))
        return cp, kp

    def client_context(self, minimum=ssl.TLSVersion.TLSv1_2, maximum=None):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(cafile=str(self.pem_path))
        ctx.minimum_version = minimum
        if maximum:
            ctx.maximum_version = maximum
        return ctx


class TlsServer(AttndServer):
    """attnd started with --tls-cert/--tls-key, checked and spoken to over
    HTTPS (the CA's context verifies it as localhost)."""

    def __init__(self, workdir, ca, extra_args=(), **kw):
        self.ca = ca
        super().__init__(workdir, extra_args=extra_args, **kw)

    def connect(self, timeout=10):
        return http.client.HTTPSConnection("localhost", self.port, timeout=timeout,
                                           context=self.ca.client_context())

    def _wait_ready(self, timeout):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            rc = self.proc.poll()
            if rc is not None:
                raise RuntimeError("attnd %r exited with %s before becoming ready; stderr:\n%s"
                                   % (self.cmd, rc, self.stderr_text()))
            try:
                conn = self.connect(timeout=2)
                try:
                    r = do_request(conn, "GET", "/healthz")
                finally:
                    conn.close()
                if r.status == 200:
                    return
                last = r
            except (OSError, ssl.SSLError) as e:
                last = e
            time.sleep(0.05)
        self.proc.kill()
        self.proc.wait()
        raise RuntimeError("attnd %r not ready within %ss (last: %r); stderr:\n%s"
                           % (self.cmd, timeout, last, self.stderr_text()))


def wait_for_log(srv, text, timeout=5.0, start=0):
    """Waits until text appears in srv's stderr after offset start."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in srv.stderr_text()[start:]:
            return True
        time.sleep(0.05)
    return False
