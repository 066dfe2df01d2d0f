"""Integrations with other systems, below the pipelines that call them.

* :mod:`clvmodel.integrations.mlflow_tracking` — MLflow's low side, the only module that imports
  mlflow: the run logger (runs, params, metrics, artifacts), the download of a logged model by
  ``models:/``/``runs:/`` URI, and the writer of a trained model as an MLflow model directory.

The other side of MLflow, the pyfunc loader every saved ``MLmodel`` names, is
:mod:`clvmodel.tracking`: it calls the scorers, so it sits above the pipelines and is kept apart
from this package. Nothing is imported here: ``import clvmodel.integrations`` costs nothing until
a module of it is used.
"""
