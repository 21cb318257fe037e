"""Postmortem Wiki: blameless postmortems, bug signatures and similar incidents."""

from __future__ import annotations

import logging

from flask import Flask

from . import config as config_module

__version__ = "0.1.0"


def create_app(config: dict | None = None) -> Flask:
    """Build the app. ``config`` overrides settings (keys as in :data:`wiki.config.SETTINGS`)."""
    settings = config_module.load(config)
    app = Flask(
        __name__,
        static_folder=str(settings["STATIC_DIR"]),
        static_url_path="/static",
    )
    app.config.update(settings)
    if not app.debug and not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    from . import app_state, auth, cli, errors, history, render, search, security
    from .views import api, editor, pages
    from .views import history as history_views
    from .views import match as match_views
    from .views import search as search_views
    from .views import similar as similar_views  # similar incidents (issue 6)
    from .views import tools as tools_views

    app_state.init_app(app)
    search.init_app(app)
    history.init_app(app)
    match_views.init_app(app)
    similar_views.init_app(app)  # after search and match: it uses their indexes
    render.init_app(app)
    errors.init_app(app)
    security.init_app(app)
    auth.init_app(app)  # before the blueprints: their hooks see g.author
    cli.init_app(app)
    app.register_blueprint(pages.bp)
    app.register_blueprint(search_views.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(history_views.bp)
    app.register_blueprint(editor.bp)
    app.register_blueprint(match_views.bp)
    app.register_blueprint(tools_views.bp)
    app.register_blueprint(similar_views.bp)
    # chat, link previews, OpenAPI and API tokens (issue 7)
    from . import chat, tokens
    from .views import openapi as openapi_views

    tokens.init_app(app)
    chat.init_app(app)
    app.register_blueprint(openapi_views.bp)
    app_state.start(app)
    return app
