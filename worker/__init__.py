"""The Celery worker of the experiment service: runs jobs through ``proxns_core.fit``."""
