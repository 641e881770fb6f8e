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

log = logging.getLogger("socialmirror.perception.mediapipe")

# glog / absl prefixes of an error or fatal line (E1205 12:00:00..., F0000 ...), or an explicit error word that
# is not MediaPipe's usual GPU notice.
_ERROR = re.compile(r"^[EF]\d{4}\b|\b(error|fatal)\b", re.IGNORECASE)
_HARMLESS = ("GPU suport is not available", "GPU support is not available")


@contextlib.contextmanager
def native_stderr_logged():
    """While the block runs, whatever is written to file descriptor 2 (native libraries, and Python's own
    stderr) is captured; afterwards each line is logged (see the module docstring)."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no usable fd 2 (an embedded interpreter): nothing to capture
        yield
        return
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            with contextlib.suppress(ValueError, OSError):
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            for line in capture.read().decode("utf-8", "replace").splitlines():
                if line.strip():
                    error = _ERROR.search(line) and not any(h in line for h in _HARMLESS)
                    log.log(logging.WARNING if error else logging.DEBUG, "%s", line.strip())


__all__ = ["native_stderr_logged"]
