"""Wires the :class:`wiki.core.Wiki` into a Flask app (one per app, shared by requests)."""

from __future__ import annotations

import logging
import time

from flask import Flask, current_app

from .core import Wiki

log = logging.getLogger(__name__)


def init_app(app: Flask) -> None:
    """Create the app's :class:`Wiki`; parts that listen to it register before :func:`start`."""
    app.extensions["wiki"] = Wiki(app.config)


def start(app: Flask) -> None:
    """Bring the database (and every listener, e.g. the search index) in line with content/."""
    wiki = app.extensions["wiki"]
    if app.config.get("SYNC_ON_START", True):
        started = time.perf_counter()
        report = wiki.sync()
        log.info("content synced in %.0f ms (%d changed, %d unchanged, %d problem(s))",
                 (time.perf_counter() - started) * 1000, len(report.changed), report.skipped,
                 len(report.problems))


def get_wiki() -> Wiki:
    return current_app.extensions["wiki"]
