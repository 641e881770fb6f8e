"""The project's exceptions: one base, user errors under it, and the CLI's exit codes in one place.

``SocialMirrorError`` is the base of every exception the project raises on purpose. ``UserError`` below it is
what a user caused and can fix (a missing path, an unreadable or empty video, a bad option or config value, a
malformed data file, missing model files): its message is one line meant for the user, and the CLI prints it
without a traceback and exits with ``EXIT_USER_ERROR``. Anything else is the project's fault: exit
``EXIT_INTERNAL`` with the exception's name. Each specific error keeps the builtin base its callers catch
(``ValueError``, ``RuntimeError``) beside the project's.
"""
from __future__ import annotations

import errno

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130


class SocialMirrorError(Exception):
    """Base of every exception the project raises on purpose."""


class UserError(SocialMirrorError):
    """The user's input, options or files cannot be used; the message says why in one line."""


class InputError(UserError, ValueError):
    """The input itself is unusable (missing path, unreadable or empty video, nobody to reconstruct)."""


class OutputError(UserError, OSError):
    """An output could not be written completely (disk full, file size limit, permissions); nothing
    half-written was left in its place."""


# A write that failed for one of these reasons is the machine's state, which the user can change.
_ENVIRONMENT_ERRNOS = frozenset({errno.ENOSPC, errno.EFBIG, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM})


def exit_code(exc: BaseException) -> int:
    """The CLI's exit status for an exception that ended a command."""
    if isinstance(exc, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    if isinstance(exc, (UserError, FileNotFoundError)):
        return EXIT_USER_ERROR
    if isinstance(exc, OSError) and exc.errno in _ENVIRONMENT_ERRNOS:
        return EXIT_USER_ERROR
    return EXIT_INTERNAL


def user_message(exc: BaseException) -> str:
    """An exception's first line, or its type's name where it has no message; a write the machine refused
    says what to check."""
    if isinstance(exc, OSError) and not isinstance(exc, UserError) and exc.errno in _ENVIRONMENT_ERRNOS:
        where = f" ({exc.filename})" if exc.filename else ""
        return (f"could not write an output{where}: {exc.strerror} (a full disk, a file size limit or missing "
                f"permission?); the files are written whole or not at all")
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def one_line(exc: BaseException) -> str:
    """An error as a user reads it: a user error's message, else "internal error (Type: message)"."""
    message = user_message(exc)
    return message if exit_code(exc) != EXIT_INTERNAL else f"internal error ({type(exc).__name__}: {message})"
