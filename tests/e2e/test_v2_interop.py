"""What Triton's and KServe's own clients send and read (issue 16), each
call's wire format as the protocol documents write it: health bodies,
top-level model_name / model_version, model configuration, statistics,
the model repository, request identity and compression.  The clients
themselves were run by hand (see the README's v2 section)."""

import json

import pytest

from test_v2 import TENSORS, seeded, v2_error


def infer(server, model, body):
    return server.post("/v2/models/%s/infer" % model, body)


# ---------------------------------------------------------------- model_name / model_version

def test_top_level_model_name_and_version(server):
    """KServe's InferRequest always sends model_name (and model_version
    when it has one): accepted when they name the URL's model."""
    plain = infer(server, "bow", seeded("bow"))
    assert plain.status == 200, plain
    for extra in ({"model_name": "bow"}, {"model_name": "bow", "model_version": "1"},
                  {"model_version": "1"}):
        r = infer(server, "bow", dict(seeded("bow"), **extra))
        assert r.status == 200 and r.body == plain.body, (extra, r)
    r = server.post("/v2/models/bow/versions/1/infer", dict(seeded("bow"), model_name="bow"))
    assert r.status == 200 and r.body == plain.body, r


@pytest.mark.parametrize("extra,text", [
    ({"model_name": "attention"}, 'model_mismatch at model_name: model_name is "attention" but this '
                                  "request was sent to model bow version 1 (the URL)"),
    ({"model_name": "Bow"}, 'model_mismatch at model_name: model_name is "Bow"'),
    ({"model_name": "bow "}, "model_mismatch at model_name"),
    ({"model_version": "2"}, 'model_mismatch at model_version: model_version is "2"'),
    ({"model_name": 1}, "wrong_type at model_name: model_name must be a string, not integer"),
    ({"model_version": 1}, "wrong_type at model_version: model_version must be a string, not integer"),
])
def test_model_name_mismatch(server, extra, text):
    msg = v2_error(infer(server, "bow", dict(seeded("bow"), **extra)), 400)
    assert text in msg, msg
