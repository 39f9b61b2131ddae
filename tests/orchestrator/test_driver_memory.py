"""The sweep's driver caps glibc's malloc arenas before Ray starts its threads (orchestrator.ray_session)."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# 16 threads allocate at once, then glibc's malloc_info counts the arenas (<heap nr=...>) the process has
SCRIPT = textwrap.dedent(
    """
    import ctypes, sys, threading
    from orchestrator.ray_session import cap_malloc_arenas

    capped = cap_malloc_arenas() if sys.argv[1] == "cap" else False
    barrier, hold = threading.Barrier(16), []

    def work():
        barrier.wait()
        hold.append([bytearray(4096) for _ in range(200)])
        barrier.wait()

    threads = [threading.Thread(target=work) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    libc = ctypes.CDLL("libc.so.6")
    libc.open_memstream.restype = ctypes.c_void_p
    buf, size = ctypes.c_char_p(), ctypes.c_size_t()
    stream = libc.open_memstream(ctypes.byref(buf), ctypes.byref(size))
    libc.malloc_info(0, ctypes.c_void_p(stream))
    libc.fclose(ctypes.c_void_p(stream))
    print(capped, ctypes.string_at(buf, size.value).decode().count("<heap nr="))
    """
)


def _arenas(mode: str, **env: str) -> tuple[str, int]:
    full = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"} | {"PYTHONPATH": str(ROOT), **env}
    out = subprocess.run([sys.executable, "-c", SCRIPT, mode], env=full, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    capped, arenas = out.stdout.split()
    return capped, int(arenas)


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc arenas are glibc's")
def test_the_driver_caps_its_malloc_arenas_and_a_users_setting_wins() -> None:
    assert _arenas("cap") == ("True", 2)
    capped, arenas = _arenas("no-cap")
    assert capped == "False" and arenas > 2  # what the cap saves: glibc's own default gives each thread an arena
    assert _arenas("cap", MALLOC_ARENA_MAX="4") == ("False", 4)
