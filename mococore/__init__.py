"""The lowest floor every package of this repository stands on: what pretrain/, converters/, mocodata/
and transfer/ all need, defined once. It imports none of them.

    errors.py   UserError: what the user gave cannot run; every entry point exits 2 with its one paragraph
    files.py    atomic file writes, the one-run-per-folder lock
    images.py   the image extensions and the ImageFolder listing every tool accepts
    norm.py     the ImageNet mean and std
    knn.py      the weighted kNN vote
"""
