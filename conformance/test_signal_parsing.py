"""Signals are read by one parser (moby's ``signal.ParseSignal``) for ``--stop-signal``,
kill and ``STOPSIGNAL``: a number but 0 is taken as it is when stored, a kill refuses one
Linux has not; names are the ``SignalMap``'s (``RTMIN+1``..``RTMIN+15``, no ``RTMIN+16``)."""

from __future__ import annotations

import pytest

from conformance.containerkit import unique
from conformance.rawhttp import RawHTTP

pytestmark = pytest.mark.timeout(60)


@pytest.mark.parametrize(("stop_signal", "status"), [
    ("99", 201), ("rtmin+3", 201), ("SIGUSR1", 201),
    ("BOGUS", 400), ("rtmin+16", 400), ("0", 400),
])
def test_create_checks_the_stop_signal(raw: RawHTTP, busybox_image: str, stop_signal: str,
                                       status: int) -> None:
    name = unique("sig")
    resp = raw.post(f"/containers/create?name={name}",
                    json_body={"Image": busybox_image, "Cmd": ["true"], "StopSignal": stop_signal})
    try:
        assert resp.status == status, resp.body[:300]
        if status == 400:
            assert resp.json()["message"] == f"Invalid signal: {stop_signal}"
        else:
            inspected = raw.get(f"/containers/{name}/json").json()
            assert inspected["Config"]["StopSignal"] == stop_signal
    finally:
        raw.delete(f"/containers/{name}?force=1")


def test_kill_refuses_numbers_linux_has_not(raw: RawHTTP, busybox_image: str) -> None:
    name = unique("sig")
    assert raw.post(f"/containers/create?name={name}",
                    json_body={"Image": busybox_image, "Cmd": ["sleep", "300"]}).status == 201
    try:
        assert raw.post(f"/containers/{name}/start").status == 204
        for signal in ("99", "65"):
            resp = raw.post(f"/containers/{name}/kill?signal={signal}")
            # 20.10: a plain error (500) "Cannot kill container: <name>: The linux daemon
            # does not support signal 99"; 23.0 and later: 400 "the linux daemon ..."
            assert resp.status in (400, 500), resp.body[:300]
            assert f"the linux daemon does not support signal {signal}" in resp.json()["message"].lower()
        resp = raw.post(f"/containers/{name}/kill?signal=rtmin%2B16")
        assert (resp.status, resp.json()["message"]) == (400, "Invalid signal: rtmin+16")
        assert raw.get(f"/containers/{name}/json").json()["State"]["Running"] is True
        assert raw.post(f"/containers/{name}/kill?signal=RTMAX-14").status == 204
    finally:
        raw.delete(f"/containers/{name}?force=1")
