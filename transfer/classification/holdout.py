"""The held-out part of the training set on which `linear-sweep` and `logreg` choose their learning rate
or regularisation: never the validation set, which only ever sees the one chosen setting.

The split is dinov2's (dinov2 eval/log_regression.py `eval_log_regression`): `torch.manual_seed(0)`, a
random permutation of the N training images, the first N // 10 held out. Here with a private generator
(the same numbers) so that nothing else's randomness depends on it.
"""
import numpy as np
import torch


def split(n, fraction=0.1, seed=0):
    """(fit, holdout): sorted index arrays of the training images; holdout = the first int(n * fraction)
    of a seeded permutation. Sorted, so that reading either from a file is sequential."""
    k = int(n * fraction + 1e-9)  # n // 10 for 0.1, without float rounding down (240 * 0.1 = 24.000000000000004)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).numpy()
    return np.sort(perm[k:]), np.sort(perm[:k])


def best(scores):
    """Index of the best score, the first one on a tie (dinov2 keeps the first classifier that reaches the max)."""
    scores = list(scores)
    return scores.index(max(scores))
