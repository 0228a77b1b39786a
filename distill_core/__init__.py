"""Distillery's distillation library: torch + transformers only, never Django or Celery.

Entry points: `distill_core.distiller.run(config)` from Python, `python -m distill_core run
config.json` from a shell. Modules are imported on demand so a config error costs no torch import.
"""
