"""Group(s) staging / marts / aggregates: the dbt project as Dagster assets.

``project.py`` knows the dbt project and builds its manifest; ``assets.py`` turns the
manifest into assets (importing it needs the manifest)."""
