"""Waiting at exit for native threads to go quiet (gloo's workers), on threads named here."""

import ctypes
import sys
import threading
import time

import pytest

from vaekit.engine.quiet_threads import thread_activity, wait_until_idle

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="reads /proc/self/task")
PR_SET_NAME = 15


def start_named_thread(name: str, busy_seconds: float, release: threading.Event):
    """A thread called ``name`` that computes for ``busy_seconds``, then sleeps on ``release``."""
    named = threading.Event()

    def body():
        ctypes.CDLL(None).prctl(PR_SET_NAME, name.encode(), 0, 0, 0)
        named.set()
        end = time.monotonic() + busy_seconds
        while time.monotonic() < end:
            sum(range(1000))
        release.wait()

    thread = threading.Thread(target=body, daemon=True)
    thread.start()
    named.wait()
    return thread


def test_a_busy_thread_is_waited_for_until_it_sleeps():
    release = threading.Event()
    thread = start_named_thread("vk_busy_a", 0.4, release)
    try:
        assert list(thread_activity("vk_busy_a")) == [str(thread.native_id)]
        start = time.monotonic()
        assert wait_until_idle("vk_busy_a", timeout=10)
        assert time.monotonic() - start >= 0.3
        state, _ = thread_activity("vk_busy_a")[str(thread.native_id)]
        assert state == "S"
    finally:
        release.set()


def test_the_wait_gives_up_at_its_timeout():
    release = threading.Event()
    start_named_thread("vk_busy_b", 2.0, release)
    try:
        start = time.monotonic()
        assert not wait_until_idle("vk_busy_b", timeout=0.2)
        assert time.monotonic() - start < 1.0
    finally:
        release.set()


def test_no_such_thread_is_idle_at_once():
    assert thread_activity("vk_nobody") == {}
    start = time.monotonic()
    assert wait_until_idle("vk_nobody")
    assert time.monotonic() - start < 0.05
