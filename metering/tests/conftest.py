"""Fixtures of the RMM sync tests: a stub RMM API on a real local socket."""

import pytest

from metering.tests.rmm_stub import StubRmm


@pytest.fixture
def rmm():
    with StubRmm() as stub:
        yield stub
