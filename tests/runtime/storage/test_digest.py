from __future__ import annotations

import hashlib

import pytest

from runtime.errors import InvalidParameter
from runtime.storage.digest import chain_id, chain_ids, validate


def test_chain_ids_follow_the_oci_definition() -> None:
    a = "sha256:" + "a" * 64
    b = "sha256:" + "b" * 64
    expected_b = "sha256:" + hashlib.sha256(f"{a} {b}".encode()).hexdigest()
    assert chain_ids([a, b]) == [a, expected_b]
    assert chain_id(None, a) == a and chain_id(a, b) == expected_b


def test_validate() -> None:
    ok = "sha256:" + "0" * 64
    assert validate(ok) == ok
    for bad in ("sha256:" + "0" * 63, "sha256:" + "G" * 64, "0" * 64, "sha512:00"):
        with pytest.raises(InvalidParameter):
            validate(bad)
