"""List and prune filters of volumes: dockerd's semantics and error texts."""

from __future__ import annotations

import pytest

from runtime.errors import InvalidParameter
from runtime.filters import Filters
from runtime.volumes.filters import (
    list_predicate, name_matches, prune_predicate,
)
from runtime.volumes.model import ANONYMOUS_LABEL, Volume


def vol(name: str, labels: dict[str, str] | None = None,
        options: dict[str, str] | None = None) -> Volume:
    return Volume(name, "local", f"/v/{name}/_data", 1, labels=labels, options=options)


def f(**values: list[str]) -> Filters:
    return Filters.of({k.replace("_bang", "!"): v for k, v in values.items()})


def test_name_is_exact_or_regex_search() -> None:
    assert name_matches(["data"], "mydata1")
    assert name_matches(["^my"], "mydata1")
    assert not name_matches(["^data"], "mydata1")
    assert name_matches(["a(b"], "a(b")  # invalid regex, but an exact match
    assert not name_matches(["a(b"], "xa(b")


def test_list_filters() -> None:
    a, b = vol("alpha", {"tier": "db"}), vol("beta")
    keep = list_predicate(f(label=["tier"]))
    assert keep(a, False) and not keep(b, False)
    keep = list_predicate(f(dangling=["true"]))
    assert keep(a, False) and not keep(a, True)
    keep = list_predicate(f(dangling=["0"]))
    assert keep(a, True) and not keep(a, False)
    keep = list_predicate(f(driver=["local"], name=["alp"]))
    assert keep(a, False) and not keep(b, False)
    assert not list_predicate(f(driver=["other"]))(a, False)


@pytest.mark.parametrize(("filters", "message"), [
    (f(nope=["x"]), "invalid filter 'nope'"),
    (f(all=["true"]), "invalid filter 'all'"),
    (f(dangling=["maybe"]), "invalid filter 'dangling=[maybe]'"),
    (f(dangling=["true", "false"]), "invalid filter 'dangling=[true false]'"),
])
def test_list_filter_errors(filters: Filters, message: str) -> None:
    with pytest.raises(InvalidParameter) as err:
        list_predicate(filters)
    assert str(err.value) == message


def test_prune_takes_anonymous_unreferenced_volumes_without_options() -> None:
    anon = vol("a" * 64, {ANONYMOUS_LABEL: ""})
    named = vol("named")
    with_opts = vol("b" * 64, {ANONYMOUS_LABEL: ""}, {"type": "tmpfs", "device": "tmpfs"})
    keep = prune_predicate(Filters())
    assert keep(anon, False) and not keep(anon, True)
    assert not keep(named, False) and not keep(with_opts, False)
    everything = prune_predicate(f(all=["1"]))
    assert everything(named, False) and not everything(with_opts, False)


def test_prune_label_filters() -> None:
    tagged = vol("tagged", {"env": "ci"})
    other = vol("other", {"env": "prod"})
    keep = prune_predicate(f(all=["true"], label=["env=ci"]))
    assert keep(tagged, False) and not keep(other, False)
    keep = prune_predicate(f(all=["true"], label_bang=["env=ci"]))
    assert not keep(tagged, False) and keep(other, False) and keep(vol("bare"), False)


@pytest.mark.parametrize(("filters", "message"), [
    (f(dangling=["true"]), "invalid filter 'dangling'"),
    (f(all=["yes"]), "invalid filter 'all': strconv.ParseBool: parsing \"yes\": invalid syntax"),
    (f(all=["true", "false"]), "invalid filter 'all=[true false]': only one value is expected"),
])
def test_prune_filter_errors(filters: Filters, message: str) -> None:
    with pytest.raises(InvalidParameter) as err:
        prune_predicate(filters)
    assert str(err.value) == message
