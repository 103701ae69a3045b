"""Where Archai's own log file goes.

Archai 1.0.0 logs through ``archai.common.ordered_dict_logger_utils.get_logger``, which gives every logger a
``TimedRotatingFileHandler(LOG_FILE, delay=True)`` with the module constant ``LOG_FILE = "archai.log"``: a
path relative to the current directory when the logger is made (most Archai modules make theirs at import),
opened on the first record. :func:`redirect_archai_log` points both at a folder of the caller's choosing:
``LOG_FILE`` for loggers made later, and the handlers already made (closed first if they were opened).
"""

from __future__ import annotations

import logging
import os
from logging.handlers import TimedRotatingFileHandler
from pathlib import Path

__all__ = ["ARCHAI_LOG_NAME", "redirect_archai_log"]

ARCHAI_LOG_NAME = "archai.log"


def redirect_archai_log(folder: str | os.PathLike[str]) -> Path:
    """Send Archai's ``archai.log`` to ``folder/archai.log`` (the folder is made); returns that path."""
    from archai.common import ordered_dict_logger_utils as archai_logging  # light: logging only

    target = Path(folder).expanduser().resolve() / ARCHAI_LOG_NAME
    target.parent.mkdir(parents=True, exist_ok=True)
    archai_logging.LOG_FILE = str(target)
    for logger in _all_loggers():
        for handler in logger.handlers:
            if isinstance(handler, TimedRotatingFileHandler) and _is_archai_log(handler.baseFilename):
                handler.acquire()
                try:
                    if handler.stream is not None:
                        handler.stream.close()
                        handler.stream = None  # type: ignore[assignment]
                    handler.baseFilename = str(target)
                finally:
                    handler.release()
    return target


def _is_archai_log(filename: str) -> bool:
    return os.path.basename(filename) == ARCHAI_LOG_NAME


def _all_loggers() -> list[logging.Logger]:
    loggers = [logging.getLogger()]
    loggers += [lg for lg in logging.Logger.manager.loggerDict.values() if isinstance(lg, logging.Logger)]
    return loggers
