"""The ``until`` and ``label!`` prune filters read the same way for containers, images and
networks, as dockerd's ``GetTimestamp`` and ``matchLabels`` read them: a Go duration
(``24h``, ``1h30m``) or a timestamp; ``label!`` keeps what does not match all of them.
Only this test's labelled objects can match, so a shared engine loses nothing else."""

from __future__ import annotations

import pytest

from conformance.containerkit import unique
from conformance.rawhttp import RawHTTP

pytestmark = pytest.mark.timeout(60)


@pytest.mark.parametrize("kind", ["containers", "images", "networks"])
@pytest.mark.parametrize("until", ["24h", "1h30m", "2000-01-01T00:00:00Z", "946684800"])
def test_until_takes_durations_and_timestamps(raw: RawHTTP, kind: str, until: str) -> None:
    label = f"pydockerd.test.prune={unique('prune')}"  # matches nothing: nothing is removed
    resp = raw.post(f'/{kind}/prune?filters={{"until":["{until}"],"label":["{label}"]}}'.replace('"', "%22"))
    assert resp.status == 200, resp.body[:300]


@pytest.mark.parametrize("kind", ["containers", "images", "networks"])
def test_until_that_is_neither_is_refused(raw: RawHTTP, kind: str) -> None:
    resp = raw.post(f'/{kind}/prune?filters=%7B%22until%22:[%22yesterday%22]%7D')
    assert resp.status in (400, 500), resp.body[:300]
    assert b"yesterday" in resp.body


def test_network_label_not_keeps_what_does_not_match_every_expression(raw: RawHTTP) -> None:
    tag = unique("lbl")
    name = f"prune-{tag}"
    body = {"Name": name, "Labels": {"pydockerd.test.a": tag, "pydockerd.test.b": tag}}
    assert raw.post("/networks/create", json_body=body).status == 201
    try:
        # label! a=tag and label! b=other: not both hold, so the network is pruned...
        flt = ('{"label":["pydockerd.test.a=%s"],"label!":["pydockerd.test.a=%s","pydockerd.test.b=other"]}'
               % (tag, tag)).replace('"', "%22")
        assert name in (raw.post(f"/networks/prune?filters={flt}").json()["NetworksDeleted"] or [])
    finally:
        raw.delete(f"/networks/{name}")
