"""A small Chrome DevTools Protocol client over ``--remote-debugging-pipe`` (no dependency, no port opened).

Chromium reads commands on its fd 3 and writes replies and events on its fd 4, each a JSON message ended by a
NUL byte. The tests use it to move the real mouse over a report (``Input.dispatchMouseEvent``), run a line of
JavaScript, and read what the page logged and requested.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

# why a launcher: Chromium wants the pipe on fds 3 and 4 exactly; subprocess would close them after preexec_fn
_LAUNCH = "import os,sys; os.dup2(int(sys.argv[1]),3); os.dup2(int(sys.argv[2]),4); os.execv(sys.argv[3],sys.argv[3:])"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--window-size=1280,900",
    "--remote-debugging-pipe",
]


class CDPError(RuntimeError):
    """A command Chromium answered with an error, or no answer in time."""


class Browser:
    """One headless Chromium with one page; ``events`` holds every event the page sent."""

    def __init__(self, chromium: str, profile: Path, *, timeout_s: float = 60.0) -> None:
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _LAUNCH, str(to_chrome_r), str(from_chrome_w), chromium, *FLAGS,
             f"--user-data-dir={profile}", "about:blank"],
            pass_fds=(to_chrome_r, from_chrome_w),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self.timeout_s = timeout_s
        self.events: list[dict[str, Any]] = []
        self._replies: queue.Queue[dict[str, Any]] = queue.Queue()
        self._next_id = 0
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.call(f"{domain}.enable", session=self.session)

    def _read(self) -> None:
        buf = b""
        while True:
            chunk = os.read(self._from_chrome, 1 << 16)
            if not chunk:
                return
            buf += chunk
            *messages, buf = buf.split(b"\0")
            for raw in messages:
                msg = json.loads(raw)
                if "id" in msg:
                    self._replies.put(msg)
                else:
                    self.events.append(msg)

    def call(self, method: str, params: dict[str, Any] | None = None, *, session: str | None = None) -> Any:
        """Send one command and wait for its reply's result."""
        self._next_id += 1
        msg: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._to_chrome, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + self.timeout_s
        while True:
            try:
                reply = self._replies.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                raise CDPError(f"{method}: no reply in {self.timeout_s} s") from None
            if reply["id"] == self._next_id:
                break
        if "error" in reply:
            raise CDPError(f"{method}: {reply['error']}")
        return reply.get("result", {})

    def page(self, method: str, params: dict[str, Any] | None = None) -> Any:
        """A command to the page's session."""
        return self.call(method, params, session=self.session)

    def open(self, url: str) -> None:
        """Navigate and wait for the load event."""
        seen = len(self.events)
        self.page("Page.navigate", {"url": url})
        self.wait_for(lambda e: e.get("method") == "Page.loadEventFired", after=seen)

    def wait_for(self, test: Any, *, after: int = 0) -> dict[str, Any]:
        deadline = time.monotonic() + self.timeout_s
        while time.monotonic() < deadline:
            for event in self.events[after:]:
                if test(event):
                    return event
            time.sleep(0.02)
        raise CDPError("the awaited event never came")

    def js(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (an exception fails the test's call)."""
        result = self.page("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        if "exceptionDetails" in result:
            raise CDPError(f"{expression[:80]}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def mouse(self, kind: str, x: float, y: float, **extra: Any) -> None:
        """A real mouse event at viewport CSS pixel (x, y): kind is mouseMoved, mousePressed, mouseReleased."""
        self.page("Input.dispatchMouseEvent", {"type": kind, "x": x, "y": y, **extra})

    def problems(self) -> list[str]:
        """What the page reported as wrong: exceptions, console errors and warnings, error log entries."""
        out = []
        for e in self.events:
            method, p = e.get("method"), e.get("params", {})
            if method == "Runtime.exceptionThrown":
                out.append("exception: " + json.dumps(p.get("exceptionDetails", {}))[:400])
            elif method == "Runtime.consoleAPICalled" and p.get("type") in ("error", "warning", "assert"):
                out.append(f"console.{p['type']}: " + json.dumps(p.get("args", []))[:400])
            elif method == "Log.entryAdded" and p.get("entry", {}).get("level") in ("error", "warning"):
                out.append("log: " + p["entry"].get("text", "")[:400])
        return out

    def requests(self) -> list[str]:
        """Every URL the page asked for (the document itself included)."""
        return [e["params"]["request"]["url"] for e in self.events if e.get("method") == "Network.requestWillBeSent"]

    def close(self) -> None:
        with contextlib.suppress(CDPError, OSError):
            self.call("Browser.close")
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._to_chrome)
        os.close(self._from_chrome)
