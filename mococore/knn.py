"""The weighted kNN vote (Wu et al. 2018, "Unsupervised Feature Learning via Non-Parametric Instance
Discrimination", eq. 7; dino eval_knn.py `knn_classifier`; mmselfsup knn_eval): each of a query's k nearest
neighbours votes for its class with weight exp(sim / T)."""
import torch


def vote(sims, labels, num_classes, T=0.07):
    """(Q, num_classes) class scores from the neighbours' cosine similarities and labels, both (Q, k)."""
    scores = torch.zeros(len(sims), num_classes, device=sims.device)
    return scores.scatter_add_(1, labels, (sims / T).exp())
