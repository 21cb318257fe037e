"""Wires the :class:`wiki.core.Wiki` into a Flask app (one per app, shared by requests)."""

from __future__ import annotations

import logging
import time

from flask import Flask, current_app

from .core import Wiki

log = logging.getLogger(__name__)


def init_app(app: Flask) -> None:
    wiki = Wiki(app.config)
    app.extensions["wiki"] = wiki
    if app.config.get("SYNC_ON_START", True):
        started = time.perf_counter()
        report = wiki.sync()
        log.info("content synced in %.0f ms (%d changed, %d unchanged, %d problem(s))",
                 (time.perf_counter() - started) * 1000, len(report.changed), report.skipped,
                 len(report.problems))


def get_wiki() -> Wiki:
    return current_app.extensions["wiki"]
