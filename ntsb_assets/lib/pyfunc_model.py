"""The registry's view of the severity model (imported only where MLflow is used: see
``tracking.__getattr__``)."""

from __future__ import annotations

from pathlib import Path

import mlflow.pyfunc as _pyfunc
import pandas as pd

from .model import SeverityModel


class PyfuncModel(_pyfunc.PythonModel):
    """The registry's view of :class:`SeverityModel`: raw feature rows in; the predicted
    class, the four class probabilities and the fatal head's probability out."""

    def load_context(self, context):
        self.model = SeverityModel.load(Path(context.artifacts["model"]))

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        return self.model.predict(model_input).reset_index(drop=True)
