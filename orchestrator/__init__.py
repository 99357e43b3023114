"""Study files in, Ray Tune + Optuna trials out, everything tracked in MLflow."""
