"""Integrations with other systems, below the pipelines that call them.

* :mod:`clvmodel.integrations.mlflow_runs` — the MLflow run logger (runs, params, metrics,
  artifacts) and the download of a logged model by ``models:/``/``runs:/`` URI.
* :mod:`clvmodel.integrations.mlflow_model` — the writer of a trained model as an MLflow model
  directory.

Only this package imports mlflow. The other side of MLflow, the pyfunc loader every saved
``MLmodel`` names, is :mod:`clvmodel.tracking`: it calls the scorers, so it sits above the
pipelines and is kept apart from this package. Nothing is imported here: ``import
clvmodel.integrations`` costs nothing until a module of it is used.
"""
