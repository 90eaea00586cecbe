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


def warehouse_writer(fn):
    """For the compute function of an asset or check that writes the warehouse (or reads
    the DuckDB file, which no other process may open while one writes): it runs holding the
    warehouse writer lock (lib/writer.py), which dies with its process, unlike a Dagster
    pool's claim. A step that waits for it says so in the run's log."""
    import functools
    import inspect

    from ..lib.writer import writer_lock

    def lock():
        try:
            context = dg.AssetExecutionContext.get()
        except dg.DagsterInvariantViolationError:
            context = dg.AssetCheckExecutionContext.get()
        what = f"{fn.__name__}, run {context.run.run_id[:8]}"
        return writer_lock(get_settings().warehouse, what, on_wait=context.log.warning)

    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def generator(*args, **kwargs):
            with lock():
                yield from fn(*args, **kwargs)

        return generator

    @functools.wraps(fn)
    def function(*args, **kwargs):
        with lock():
            return fn(*args, **kwargs)

    return function
