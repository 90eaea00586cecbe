"""`ntsb build` as a user runs it, on the bundled sample (embedded): it materializes what the
automation requests. The model trains on the first build (never trained), not while its
features change less than NTSB_RETRAIN_THRESHOLD, and with --retrain; without a champion
the build still ends with the serving snapshot, with no predictions."""

import json
import shutil

from tests.conftest import SAMPLE
from tests.integration.helpers import ntsb, query

BASE = ("00_reference_avall", "01_part121_1982_2019", "02_up01JUL2025", "03_up01DEC2025", "04_up01JAN2026")
UPDATE = "05_up01FEB2026"


def _build(*args: str) -> dict:
    return json.loads(ntsb("build", "--json", *args).stdout)


def test_build_trains_the_model_when_its_features_changed_or_when_asked(ntsb_home):
    landing = ntsb_home / "landing"
    landing.mkdir(parents=True)
    for rel in BASE:
        shutil.copytree(SAMPLE / rel, landing / rel)

    # never trained: the first build trains; a margin no model reaches leaves no champion
    first = _build("--auc-margin", "1")
    ml = first["ml"]
    assert ml["retrained"] and ml["version"] == "1" and not all(ml["checks"].values())
    assert ml["champion"] is None and ml["predictions"] == 0
    assert first["serving"]  # the snapshot is published without predictions
    # every narrative text embedded (no NTSB_EMBED_MAX_TEXTS), and counted in the summary
    texts = query("SELECT count(*) AS n FROM (SELECT DISTINCT ev_id, aircraft_key, field FROM ml.narrative_vectors)")
    assert first["narrative_vectors"] == {"texts": texts[0]["n"], "embedded": texts[0]["n"], "waiting": 0}
    assert texts[0]["n"] > 0
    assert query("SELECT count(*) AS n FROM information_schema.tables WHERE table_name = 'batch_predictions'") == [
        {"n": 0}
    ]

    # a monthly update: a few events against the threshold, so the model is not trained again
    shutil.copytree(SAMPLE / UPDATE, landing / UPDATE)
    update = _build()
    ml = update["ml"]
    assert [r["release"] for r in update["releases"]] and not ml["retrained"], ml
    assert 0 < ml["drift"]["share"] <= ml["drift"]["threshold"] and ml["drift"]["new"] > 0
    assert ml["version"] is None and ml["checks"] == {} and ml["champion"] is None

    # asked to: trained again, promoted (checks relaxed), every event predicted
    retrained = _build("--retrain", "--auc-margin", "-1", "--max-ece", "1")
    ml = retrained["ml"]
    assert ml["retrained"] and ml["version"] == "2" and all(ml["checks"].values()) and ml["champion"] == "2"
    events = query("SELECT count(*) AS n FROM marts.fact_accidents")[0]["n"]
    assert ml["predictions"] == events > 0
