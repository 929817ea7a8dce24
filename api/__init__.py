"""The REST API of the experiment service (FastAPI). Build it with ``api.main.create_app``."""
