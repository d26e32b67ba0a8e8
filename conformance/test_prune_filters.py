"""The ``until`` and ``label!`` prune filters read the same way for containers, images and
networks (and ``label`` everywhere as moby's ``MatchKVList``), as dockerd's ``GetTimestamp`` and ``matchLabels`` read them: a Go duration
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
    # a plain error in dockerd's GetTimestamp, so a 500 (not a 400)
    assert resp.status == 500, resp.body[:300]
    assert resp.json()["message"] == 'failed to parse value as time or duration: "yesterday"'


@pytest.mark.parametrize("kind", ["containers", "images", "networks"])
def test_more_than_one_until_is_refused(raw: RawHTTP, kind: str) -> None:
    label = f"pydockerd.test.prune={unique('prune')}"
    flt = f'{{"until":["1h","2h"],"label":["{label}"]}}'.replace('"', "%22")
    resp = raw.post(f"/{kind}/prune?filters={flt}")
    assert resp.status == 500, resp.body[:300]  # dockerd's getUntilFromPruneFilters: errors.New
    assert resp.json()["message"] == "more than one until filter specified"


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


def test_label_filter_has_no_not_equal_operator(raw: RawHTTP, busybox_image: str) -> None:
    """``label=a!=b`` asks for a label ``a!`` valued ``b`` (``MatchKVList`` splits at the
    first ``=``), so a container labelled ``a=c`` does not match it, nor one without labels."""
    tag = unique("lbl")
    with_label = raw.post(f"/containers/create?name=kv-{tag}",
                          json_body={"Image": busybox_image, "Labels": {f"pydockerd.test.{tag}": "c"}})
    assert with_label.status == 201, with_label.body[:300]
    try:
        flt = f'{{"label":["pydockerd.test.{tag}!=b"]}}'.replace('"', "%22")
        assert raw.get(f"/containers/json?all=1&filters={flt}").json() == []
        flt = f'{{"label":["pydockerd.test.{tag}=c"]}}'.replace('"', "%22")
        assert [c["Id"] for c in raw.get(f"/containers/json?all=1&filters={flt}").json()] == [with_label.json()["Id"]]
    finally:
        raw.delete(f"/containers/kv-{tag}?force=1")
