"""Scale-out on existing engines: Ray Data for corpus-scale tagging (:mod:`bioner.scale.corpus`).

Distributed training lives with the training loop (:mod:`bioner.recipes.distributed`).
"""
