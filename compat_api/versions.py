"""API versions: the range pydockerd serves and comparisons on ``1.NN`` strings."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import total_ordering

_VERSION_RE = re.compile(r"^(\d+)\.(\d+)$")


@total_ordering
@dataclass(frozen=True, slots=True)
class APIVersion:
    major: int
    minor: int

    @classmethod
    def parse(cls, text: str) -> APIVersion | None:
        """``"1.44"`` -> APIVersion(1, 44); anything else -> None."""
        match = _VERSION_RE.match(text)
        if match is None:
            return None
        return cls(int(match.group(1)), int(match.group(2)))

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, APIVersion):
            return NotImplemented
        return (self.major, self.minor) < (other.major, other.minor)

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}"


MIN_API_VERSION = APIVersion(1, 24)
MAX_API_VERSION = APIVersion(1, 50)

# The Docker Engine release whose API behaviour pydockerd reproduces; reported as the
# engine Version so tools that parse Docker versions keep working.
ENGINE_VERSION = "28.2.2"
