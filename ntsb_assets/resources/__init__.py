"""Dagster resources. One resource gives assets the project settings (and through them the
lake, the landing zone and the warehouse), read from the environment when a run starts."""


import dagster as dg

from ..settings import Settings, get_settings


class NtsbResource(dg.ConfigurableResource):
    """Project settings from ``NTSB_*`` environment variables (see ntsb_assets/settings.py)."""

    def settings(self) -> Settings:
        return get_settings()
