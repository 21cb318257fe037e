"""Full-text search (issue 3). Placeholder until the Whoosh index lands."""


def init_app(app) -> None:  # pragma: no cover - replaced by the search implementation
    return None
