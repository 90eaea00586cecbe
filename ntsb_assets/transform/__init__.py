"""Groups staging / intermediate / marts / aggregates / docs: the dbt project as Dagster assets.

``project.py`` knows the dbt project and builds its manifest; ``assets.py`` turns the
manifest into assets (importing it needs the manifest); ``docs.py`` publishes the dbt docs
site to the lake."""
