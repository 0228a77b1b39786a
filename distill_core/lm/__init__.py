"""Causal-LM distillation: a generative teacher teaches a smaller causal LM token by token.

The run kind `lm_distill` (config.RUN_KINDS) dispatched from distiller.run: options.py holds its
config section, losses.py the token-level losses, data.py the prompt/response, chat and plain-text
readers, models.py the teacher and the student (checkpoint, derived from the teacher, or preset),
topk_cache.py the offline top-k teacher cache, trainer.py the step inside the loop both run kinds share
(train_loop.py), evaluate.py perplexity, agreement, samples and generation speed, and run.py the run itself.
"""
