"""Docker's list filters (``filters=`` query) as a domain value, with its matching rules."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from runtime.errors import InvalidParameter, SystemError_
from runtime.timefmt import until_ns


@dataclass(frozen=True, slots=True)
class Filters:
    """Filter name -> accepted values. An absent name does not restrict anything."""

    values: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: MappingProxyType({}))

    @classmethod
    def of(cls, raw: Mapping[str, Iterable[str]]) -> Filters:
        return cls(MappingProxyType({k: tuple(v) for k, v in raw.items()}))

    def __bool__(self) -> bool:
        return bool(self.values)

    def validate(self, accepted: Iterable[str]) -> None:
        """Raise Docker's ``invalid filter`` error for a name outside ``accepted``."""
        allowed = set(accepted)
        for name in self.values:
            if name not in allowed:
                raise InvalidParameter(f"invalid filter '{name}'")

    def get(self, name: str) -> tuple[str, ...]:
        return self.values.get(name, ())

    def has(self, name: str) -> bool:
        return name in self.values

    def exact_match(self, name: str, value: str) -> bool:
        """True when ``name`` is absent or one of its values equals ``value``."""
        accepted = self.values.get(name)
        return accepted is None or value in accepted

    def bool_value(self, name: str) -> bool | None:
        """Value of a boolean filter such as ``dangling`` (None when absent)."""
        accepted = self.values.get(name)
        if not accepted:
            return None
        truthy = {v.lower() for v in accepted}
        if truthy - {"true", "1", "false", "0"}:
            bad = next(iter(sorted(truthy - {"true", "1", "false", "0"})))
            raise InvalidParameter(f"invalid filter '{name}={bad}'")
        if truthy & {"true", "1"} and truthy & {"false", "0"}:
            # dockerd accepts `dangling` sent twice with the same meaning (docker image prune -a)
            raise InvalidParameter(f"invalid filter '{name}': conflicting values")
        return bool(truthy & {"true", "1"})

    def match_label_filters(self, labels: Mapping[str, str] | None) -> bool:
        """dockerd's prune rule (``matchLabels``): every ``label`` expression holds, and
        not every ``label!`` expression does."""
        if not self.match_labels(labels):
            return False
        return not (self.has("label!") and self.match_labels(labels, "label!"))

    def match_labels(self, labels: Mapping[str, str] | None, name: str = "label") -> bool:
        """moby's ``Args.MatchKVList``: no ``name`` values match everything; otherwise every
        ``key`` or ``key=value`` must hold, so nothing matches an empty label set. The value
        is split at the first ``=`` only: ``a!=b`` asks for a label ``a!`` valued ``b``."""
        exprs = self.values.get(name, ())
        if not exprs:
            return True
        if not labels:
            return False
        for expr in exprs:
            key, sep, wanted = expr.partition("=")
            if key not in labels or (sep and labels[key] != wanted):
                return False
        return True

    def prune_until(self, now_ns: int | None = None) -> int | None:
        """The ``until`` of a prune (dockerd's ``getUntilFromPruneFilters``) as Unix
        nanoseconds, None without one. Both errors are plain ones in dockerd (500): more
        than one value, and a value that is neither a timestamp nor a Go duration."""
        values = self.get("until")
        if not values:
            return None
        if len(values) > 1:
            raise SystemError_("more than one until filter specified")
        try:
            return until_ns(values[0], now_ns)
        except ValueError as exc:
            raise SystemError_(str(exc)) from None

    def until_values(self, now_ns: int | None = None) -> tuple[int, ...]:
        """Every ``until`` value of a list filter (image list) as Unix nanoseconds; an
        unparsable one is a plain error (500), as above."""
        try:
            return tuple(until_ns(v, now_ns) for v in self.get("until"))
        except ValueError as exc:
            raise SystemError_(str(exc)) from None
