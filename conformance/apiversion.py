"""API version strings ("1.41") as comparable values.

Expectations in the suite are derived from what the engine under test advertises, so the same
tests hold for pydockerd (1.50) and for a reference dockerd of another release (20.10 is 1.41).
"""

from __future__ import annotations

from dataclasses import dataclass

#: The highest API version the docker CLI 28.2.2 speaks; it negotiates min(its max, engine max).
CLI_MAX_API = "1.50"


@dataclass(frozen=True, slots=True, order=True)
class APIVersion:
    major: int
    minor: int

    @classmethod
    def parse(cls, text: str) -> APIVersion:
        major, _, minor = text.strip().partition(".")
        return cls(int(major), int(minor or 0))

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}"

    def previous(self) -> APIVersion:
        """The minor version just below (1.24 -> 1.23)."""
        if self.minor == 0:
            raise ValueError(f"no version below {self}")
        return APIVersion(self.major, self.minor - 1)

    def next(self) -> APIVersion:
        """The minor version just above (1.50 -> 1.51)."""
        return APIVersion(self.major, self.minor + 1)


def negotiated(advertised: str, client_max: str = CLI_MAX_API) -> str:
    """The version the Go client settles on: the lower of its maximum and the engine's."""
    return str(min(APIVersion.parse(advertised), APIVersion.parse(client_max)))
