"""Content codings (issue 16): request bodies sent with Content-Encoding
gzip or deflate are decoded (the body limit applies to the decoded size:
a zip bomb is a 413), any other coding a 415; answers compressed when
Accept-Encoding asks and they are at least 1460 bytes (server/encoding.h)."""

import gzip
import json
import zlib

import pytest

from test_v2 import to_binary

MEDIUM = {"x": [[[float(i % 7) / 3 for i in range(8)] for _ in range(16)]], "seed": 3, "head_size": 4,
          "return": ["weights", "out", "q", "k", "v"]}


def deflate_raw(b):
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    return c.compress(b) + c.flush()


CODINGS = {
    "gzip": gzip.compress,
    "x-gzip": gzip.compress,
    "GZIP": gzip.compress,
    "deflate": zlib.compress,           # HTTP's deflate: zlib's format
    "deflate ": deflate_raw,            # what some clients send instead: raw deflate
    "identity, gzip": gzip.compress,
}


@pytest.mark.parametrize("coding", sorted(CODINGS))
def test_request_body_decoded(server, coding):
    body = json.dumps({"x": [[[1.0, 2.0], [3.0, 4.0]]], "method": "all"}).encode()
    plain = server.request("POST", "/bow", body)
    r = server.request("POST", "/bow", CODINGS[coding](body), headers={"Content-Encoding": coding})
    assert r.status == 200 and r.body == plain.body, r


def test_gzip_members_concatenated(server):
    body = json.dumps({"x": [[[1.0, 2.0], [3.0, 4.0]]]}).encode()
    two = gzip.compress(body[:10]) + gzip.compress(body[10:])
    r = server.request("POST", "/bow", two, headers={"Content-Encoding": "gzip"})
    assert r.status == 200 and r.body == server.request("POST", "/bow", body).body


def test_v2_gzip_binary_tensor_data(server):
    """tritonclient's infer(..., request_compression_algorithm="gzip"): the
    whole body compressed, Inference-Header-Content-Length the JSON's
    length in the decoded body."""
    x = {"id": "z", "inputs": [{"name": "x", "shape": [1, 3, 2], "datatype": "FP32",
                                "data": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]}]}
    raw, hdrs = to_binary(x)
    plain = server.request("POST", "/v2/models/bow/infer", raw, headers=hdrs,
                           content_type="application/octet-stream")
    r = server.request("POST", "/v2/models/bow/infer", gzip.compress(raw),
                       headers=dict(hdrs, **{"Content-Encoding": "gzip"}),
                       content_type="application/octet-stream")
    assert plain.status == r.status == 200 and r.body == plain.body, r


@pytest.mark.parametrize("path,coding,status,text", [
    ("/bow", "br", 415, "Content-Encoding br is not supported"),
    ("/bow", "gzip, gzip", 415, "Content-Encoding gzip, gzip is not supported"),
    ("/bow", "compress", 415, "unsupported_encoding"),
    ("/v2/models/bow/infer", "zstd", 415, "unsupported_encoding: Content-Encoding zstd is not supported"),
    ("/bow", "gzip", 400, "invalid_encoding"),
    ("/v2/models/bow/infer", "deflate", 400, "invalid_encoding: the request body is not valid deflate data"),
])
def test_request_coding_errors(server, path, coding, status, text):
    r = server.request("POST", path, b'{"x": [[[1]]]}', headers={"Content-Encoding": coding})
    assert r.status == status and text in r.body.decode(), r
    if path.startswith("/v2"):
        assert list(r.json()) == ["error"]
    else:
        assert r.json()["error"]["status"] == status


def test_truncated_and_trailing_gzip(server):
    z = gzip.compress(b'{"x": [[[1]]]}')
    for bad in (z[:-4], z + b"junk"):
        r = server.request("POST", "/bow", bad, headers={"Content-Encoding": "gzip"})
        assert r.status == 400 and r.json()["error"]["code"] == "invalid_encoding", r


def test_decoded_size_limit(small_server):
    """--max-body 1000: a body decoding to exactly 1000 bytes is taken, one
    byte more is a 413, however small it is compressed."""
    body = b'{"x": [[[1]]]}'
    exact = body + b" " * (1000 - len(body))
    r = small_server.request("POST", "/bow", gzip.compress(exact), headers={"Content-Encoding": "gzip"})
    assert r.status == 200, r
    r = small_server.request("POST", "/bow", gzip.compress(exact + b" "), headers={"Content-Encoding": "gzip"})
    assert r.status == 413 and r.json()["error"]["code"] == "body_too_large", r
    assert "decodes to more than this server's limit of 1000 bytes" in r.json()["error"]["message"]
    r = small_server.request("POST", "/v2/models/bow/infer", zlib.compress(b" " * 5000),
                             headers={"Content-Encoding": "deflate"})
    assert r.status == 413 and r.json()["error"].startswith("body_too_large:"), r


def test_zip_bomb(server):
    """64 MiB + 1 of zeros in 65 KB: refused at the default --max-body
    (64 MiB) without holding more than the limit, and the server goes on."""
    bomb = zlib.compressobj(9, zlib.DEFLATED, 31)
    z = bomb.compress(b"0" * (64 * 1024 * 1024 + 1)) + bomb.flush()
    assert len(z) < 100000
    r = server.request("POST", "/attention", z, headers={"Content-Encoding": "gzip"})
    assert r.status == 413 and r.json()["error"]["code"] == "body_too_large", r
    assert server.request("GET", "/healthz").status == 200


# ---------------------------------------------------------------- responses

def medium(server, headers):
    return server.request("POST", "/attention", MEDIUM, headers=headers)


@pytest.mark.parametrize("accept,coding", [
    ("gzip", "gzip"), ("deflate", "deflate"), ("gzip, deflate, br", "gzip"),
    ("deflate, gzip;q=0.5", "deflate"), ("gzip;q=0, deflate", "deflate"), ("*", "gzip"),
    ("br;q=1, *;q=0.1", "gzip"), ("identity", None), ("gzip;q=0", None), ("*;q=0", None),
    ("", None), ("br", None),
])
def test_response_compressed_when_asked(server, accept, coding):
    plain = medium(server, {})
    assert plain.status == 200 and len(plain.body) >= 1460 and plain.header("Content-Encoding") is None
    r = medium(server, {"Accept-Encoding": accept})
    assert r.status == 200 and r.header("Content-Encoding") == coding, (accept, r.headers)
    assert r.header("Vary") == "Accept-Encoding"
    body = {"gzip": gzip.decompress, "deflate": zlib.decompress, None: bytes}[coding](r.body)
    assert body == plain.body
    if coding:
        assert int(r.header("Content-Length")) == len(r.body) < len(plain.body) / 1.5


def test_small_and_static_answers_are_sent_as_they_are(server):
    small = server.request("POST", "/bow", {"x": [[[1.0]]]}, headers={"Accept-Encoding": "gzip"})
    assert small.status == 200 and len(small.body) < 1460 and small.header("Content-Encoding") is None
    assert small.header("Vary") == "Accept-Encoding"
    for path in ("/openapi.yaml", "/"):
        r = server.request("GET", path, headers={"Accept-Encoding": "gzip"})
        assert r.status == 200 and r.header("Content-Encoding") is None and r.header("Vary") is None, path


def test_only_computed_answers_are_compressed(server):
    """As Triton: model answers (native, v2 infer) and /randn; not the
    metadata, configuration, statistics or errors, which
    tritonclient.http.aio reads as they come although its aiohttp session
    sends Accept-Encoding: gzip, deflate on every request."""
    aio = {"Accept-Encoding": "gzip, deflate"}
    r = server.request("POST", "/randn", {"seed": 1, "shape": [400]}, headers=aio)
    assert r.status == 200 and r.header("Content-Encoding") == "gzip" and r.header("Vary") == "Accept-Encoding"
    for path in ("/v2/models/multihead/config", "/metrics"):
        r = server.request("GET", path, headers=aio)
        assert r.status == 200 and len(r.body) >= 1460, path
        assert r.header("Content-Encoding") is None and r.header("Vary") is None, path
        if path != "/metrics":
            json.loads(r.body)
    for path in ("/v2/models/stats", "/v2/models/multihead"):    # under 1460 bytes anyway
        assert server.request("GET", path, headers=aio).header("Vary") is None, path
    big_error = {"x": [[[1.0]]], "wq": [[1.0]], "wk": [[1.0]], "wv": [[1.0]], "return": ["z" * 3000]}
    r = server.request("POST", "/attention", big_error, headers=aio)
    assert r.status == 422 and r.header("Content-Encoding") is None, r


def test_v2_binary_outputs_compressed(server):
    body = {"inputs": [], "parameters": {"seed": 1, "shape": [2, 16, 8], "head_size": 8,
                                         "binary_data_output": True}}
    plain = server.post("/v2/models/attention/infer", body)
    r = server.request("POST", "/v2/models/attention/infer", body, headers={"Accept-Encoding": "gzip"})
    assert r.status == 200 and r.header("Content-Encoding") == "gzip", r.headers
    assert gzip.decompress(r.body) == plain.body
    # as Triton: the header is the JSON's length in the decoded body
    assert r.header("Inference-Header-Content-Length") == plain.header("Inference-Header-Content-Length")
