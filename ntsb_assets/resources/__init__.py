"""Dagster resources. One resource gives assets the project settings (and through them the
lake, the landing zone and the warehouse), read from the environment when a run starts."""


import dagster as dg

from ..settings import Settings, get_settings


class NtsbResource(dg.ConfigurableResource):
    """Project settings from ``NTSB_*`` environment variables (see ntsb_assets/settings.py),
    checked before use: a malformed or unreachable URL fails the run at once, naming the
    setting."""

    def settings(self) -> Settings:
        settings = get_settings()
        settings.check()
        return settings
