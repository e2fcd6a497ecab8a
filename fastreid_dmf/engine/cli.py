"""Command-line error handling: a bad input ends a ``tools/`` command with exit code 1 and one line.

Errors that describe a bad input (a config value, a path, a checkpoint, an unreadable image) are raised
by this package as ``ValueError`` or an ``OSError`` subclass with a message naming the key, file or value
and what was expected; a traceback adds nothing for the user. Any other exception is a bug and keeps its
traceback.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable
from typing import Any, NoReturn

__all__ = ["INPUT_ERRORS", "run_cli"]

#: Exception types whose message is the whole story (see module docstring).
INPUT_ERRORS: tuple[type[BaseException], ...] = (ValueError, OSError)


def _fail(prog: str, message: str) -> NoReturn:
    sys.stdout.flush()
    print(f"{prog}: error: {message}", file=sys.stderr, flush=True)
    sys.exit(1)


def run_cli(main: Callable[[], Any], prog: str) -> Any:
    """Run ``main()``; on an error print ``<prog>: error: <message>`` to stderr and exit with code 1.

    Args:
        main: the command's body (e.g. fast-reid's ``launch(...)`` call).
        prog: the command's name for the message.

    Returns:
        ``main()``'s result when it succeeds.

    Raises:
        SystemExit: code 1 after any exception (:data:`INPUT_ERRORS` as one line, others with their
            traceback; ``FASTREID_DMF_TRACEBACK=1`` prints it for input errors too). ``KeyboardInterrupt``
            and ``SystemExit`` pass through.
    """
    try:
        return main()
    except INPUT_ERRORS as err:
        if os.environ.get("FASTREID_DMF_TRACEBACK") == "1":
            traceback.print_exc()
        message = " ".join(str(err).split()) or type(err).__name__
        if isinstance(err, OSError) and err.filename and str(err.filename) not in message:
            message = f"{message}: {err.filename}"
        _fail(prog, message)
    except Exception:  # noqa: BLE001  (a bug: keep the traceback, still exit 1)
        traceback.print_exc()
        _fail(prog, "unexpected error (traceback above); please report it")
