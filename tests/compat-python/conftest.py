"""Fixtures: one mock backend and one switchboard binary for the session.

Tests isolate themselves by using topic names and client ids of their own.
"""

from __future__ import annotations

import itertools
import os

import pytest

from harness import Backend, Gateway

_counter = itertools.count(1)


@pytest.fixture(scope="session")
def backend():
    b = Backend()
    yield b
    b.stop()


@pytest.fixture(scope="session")
def gateway(backend):
    g = Gateway(backend)
    yield g
    g.stop()
    if os.environ.get("COMPAT_LOG"):
        print("\n[switchboard log]\n" + g.log())
    g.cleanup()


@pytest.fixture(autouse=True)
def _no_signature_failures(backend):
    """Every webhook call the gateway made during a test was signed right."""
    before = len(backend.signature_failures)
    yield
    assert backend.signature_failures[before:] == []


@pytest.fixture
def uniq():
    """A fresh slug for topics and client ids: `uniq("room")` -> "room-7"."""
    n = next(_counter)
    return lambda prefix: f"{prefix}-{n}"


def pytest_runtest_makereport(item, call):
    """On a failure, attach the gateway's log tail to the report."""
    if call.when == "call" and call.excinfo is not None and "gateway" in item.fixturenames:
        g = item.funcargs.get("gateway")
        if g is not None:
            item.add_report_section("call", "switchboard log (tail)", g.log()[-4000:])
