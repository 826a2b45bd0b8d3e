"""Checkpoint converters: read any common MoCo checkpoint, write what Detectron2, MMSeg and mmpretrain read."""
from mococore.errors import UserError


class ConversionError(UserError):
    """A checkpoint that cannot be converted; str(e) names the file and the reason. The CLIs exit 2 with it."""
