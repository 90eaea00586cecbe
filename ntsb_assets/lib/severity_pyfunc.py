"""The severity model as MLflow loads it: "models from code". MLflow runs this file when it
loads a registered version, instead of unpickling an object (which it rightly warns
about); the weights come from the version's artifacts (``PyfuncModel.load_context``)."""

import mlflow

from ntsb_assets.lib.pyfunc_model import PyfuncModel

mlflow.models.set_model(PyfuncModel())
