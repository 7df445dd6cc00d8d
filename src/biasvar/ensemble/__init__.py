"""Ensembles: stacked (vectorized) models, optimizers, block training, block files,
and collecting every member's logits into Parquet (stages ``train``, ``collect``)."""
