"""MediaPipe's native start-up lines are logged, not printed (issue 15 case 11): what is written to file
descriptor 2 inside ``native_stderr_logged`` becomes log records, an error line a warning."""
from __future__ import annotations

import logging
import os

from socialmirror.perception.native_log import native_stderr_logged


def test_native_lines_become_log_records(capfd, caplog):
    with caplog.at_level(logging.DEBUG, logger="socialmirror.perception.mediapipe"):
        with native_stderr_logged():
            os.write(2, b"W0000 00:00:1 inference_feedback_manager.cc:114] Feedback manager requires a model\n")
            os.write(2, b"I0000 task_runner.cc:85] GPU suport is not available: INTERNAL: ; RET_CHECK failure\n")
            os.write(2, b"E0000 00:00:1 graph.cc:1] a real error\n")
    assert capfd.readouterr().err == ""  # nothing reached the terminal
    levels = {r.getMessage().split()[0]: r.levelno for r in caplog.records}
    assert levels == {"W0000": logging.DEBUG, "I0000": logging.DEBUG, "E0000": logging.WARNING}
    os.write(2, b"after\n")  # fd 2 is back
    assert capfd.readouterr().err == "after\n"


def test_two_threads_capturing_at_once_give_standard_error_back(capfd, caplog):
    # Two detectors load their models in two threads: the first enters, the second enters, the first leaves,
    # then the second. Each saving and restoring fd 2 on its own left it pointing at a capture file, and
    # everything written to standard error afterwards (the run's summary) was lost.
    import threading
    steps = [threading.Event() for _ in range(3)]

    def first():
        with native_stderr_logged():
            os.write(2, b"W0000 first\n")
            steps[0].set()
            steps[1].wait(5)
        steps[2].set()

    def second():
        steps[0].wait(5)
        with native_stderr_logged():
            steps[1].set()
            steps[2].wait(5)
            os.write(2, b"W0000 second\n")

    with caplog.at_level(logging.DEBUG, logger="socialmirror.perception.mediapipe"):
        threads = [threading.Thread(target=first), threading.Thread(target=second)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
    assert all(step.is_set() for step in steps)
    assert capfd.readouterr().err == ""
    assert sorted(r.getMessage() for r in caplog.records) == ["W0000 first", "W0000 second"]
    os.write(2, b"after\n")
    assert capfd.readouterr().err == "after\n"
