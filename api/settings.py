"""The service settings (one pydantic-settings class, prefix ``PROXNS_``), defined in ``store.settings``."""

from store.settings import Settings, get_settings

__all__ = ["Settings", "get_settings"]
