"""Schemathesis hooks for conformance/test_fuzz_schema.py (loaded through SCHEMATHESIS_HOOKS).

A 5xx answer to a request is a defect when it means the daemon failed, not when it is the
deliberate answer of dockerd's categories: 501 (not implemented) and 503 (unavailable: no
swarm, no registry) are what dockerd itself answers for such requests.
"""

from __future__ import annotations

import schemathesis

DELIBERATE = frozenset({501, 503})


@schemathesis.check
def no_internal_error(ctx: schemathesis.CheckContext, response: schemathesis.Response,
                      case: schemathesis.Case) -> bool | None:
    """Any 5xx other than 501/503 fails, with the daemon's message."""
    if response.status_code >= 500 and response.status_code not in DELIBERATE:
        raise AssertionError(f"{response.status_code}: {response.text[:300]}")
    return None
