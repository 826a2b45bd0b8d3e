"""Data sets for pretraining and transfer: built-in generation in the real on-disk formats,
validation of a data root before any work, and registration of the real sets with Detectron2."""
