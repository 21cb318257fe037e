"""Search pages (issue 3). Placeholder blueprint until search lands."""

from flask import Blueprint

bp = Blueprint("search", __name__)
