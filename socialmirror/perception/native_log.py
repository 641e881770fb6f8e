"""MediaPipe's native start-up lines, out of the user's way.

Loading a MediaPipe model makes its C++ side (absl, glog, TensorFlow Lite) write lines such as "WARNING: All log
messages before absl::InitializeLog() is called are written to STDERR", "GPU suport is not available: INTERNAL:
... Unable to initialize EGL" or "Created TensorFlow Lite XNNPACK delegate for CPU" straight to the process's
standard error, where they read like errors to a new user. ``native_stderr_logged`` captures file descriptor 2
while a model loads and hands the lines to Python's logging instead: DEBUG (``-v`` shows them), or WARNING for
a line that reports an error or a fatal condition.
"""
from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import tempfile
import threading

log = logging.getLogger("socialmirror.perception.mediapipe")

# glog / absl prefixes of an error or fatal line (E1205 12:00:00..., F0000 ...), or an explicit error word that
# is not MediaPipe's usual GPU notice.
_ERROR = re.compile(r"^[EF]\d{4}\b|\b(error|fatal)\b", re.IGNORECASE)
_HARMLESS = ("GPU suport is not available", "GPU support is not available")


class _Capture:
    """The one capture of file descriptor 2 that every thread inside ``native_stderr_logged`` shares: fd 2 is
    process-wide, so two detectors loading their models at once in two threads (``perception_workers``) must
    not each save and restore it (the second would restore the first's capture, and everything written to
    standard error afterwards, the run's own summary included, was lost)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.inside = 0
        self.saved: int | None = None
        self.file = None

    def enter(self) -> bool:
        """Join the capture (the first thread in starts it); False where fd 2 cannot be captured."""
        with self.lock:
            if self.inside == 0:
                try:
                    sys.stderr.flush()
                    saved = os.dup(2)
                except (OSError, ValueError):  # no usable fd 2 (an embedded interpreter): nothing to capture
                    return False
                self.saved, self.file = saved, tempfile.TemporaryFile()
                os.dup2(self.file.fileno(), 2)
            self.inside += 1
            return True

    def leave(self) -> None:
        """Leave the capture; the last thread out restores fd 2 and logs what was captured."""
        with self.lock:
            self.inside -= 1
            if self.inside:
                return
            with contextlib.suppress(ValueError, OSError):
                sys.stderr.flush()
            os.dup2(self.saved, 2)
            os.close(self.saved)
            self.file.seek(0)
            text = self.file.read().decode("utf-8", "replace")
            self.file.close()
            self.saved = self.file = None
        for line in text.splitlines():
            if line.strip():
                error = _ERROR.search(line) and not any(h in line for h in _HARMLESS)
                log.log(logging.WARNING if error else logging.DEBUG, "%s", line.strip())


_CAPTURE = _Capture()


@contextlib.contextmanager
def native_stderr_logged():
    """While the block runs, whatever is written to file descriptor 2 (native libraries, and Python's own
    stderr) is captured; afterwards each line is logged (see the module docstring). Threads share one capture,
    which ends when the last of them leaves."""
    if not _CAPTURE.enter():
        yield
        return
    try:
        yield
    finally:
        _CAPTURE.leave()


__all__ = ["native_stderr_logged"]
