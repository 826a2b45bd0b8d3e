"""LARS (You et al. 2017) as MoCo v3 uses it for ResNets: a layer-wise trust ratio and weight
decay for matrices and kernels only; biases and norm parameters (ndim <= 1) take plain momentum SGD."""
import torch


class LARS(torch.optim.Optimizer):
    def __init__(self, params, lr=0.0, weight_decay=0.0, momentum=0.9, trust_coefficient=0.001):
        super().__init__(params, dict(lr=lr, weight_decay=weight_decay, momentum=momentum,
                                      trust_coefficient=trust_coefficient))

    @torch.no_grad()
    def step(self, closure=None):
        for g in self.param_groups:
            for p in g["params"]:
                if p.grad is None:
                    continue
                update = p.grad
                if p.ndim > 1:
                    update = update.add(p, alpha=g["weight_decay"])
                    p_norm, u_norm = p.norm(), update.norm()
                    # trust ratio eta * |w| / |g + wd w|, or 1 where either norm is zero
                    ratio = torch.where((p_norm > 0) & (u_norm > 0), g["trust_coefficient"] * p_norm / u_norm,
                                        torch.ones_like(p_norm))
                    update = update.mul(ratio)
                state = self.state[p]
                if "mu" not in state:
                    state["mu"] = torch.zeros_like(p)
                state["mu"].mul_(g["momentum"]).add_(update)
                p.add_(state["mu"], alpha=-g["lr"])
