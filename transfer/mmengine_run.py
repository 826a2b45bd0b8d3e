"""What the MMEngine runners (MMSeg and mmpretrain) share: --cfg-options checked against the config,
and the run's own checkpoints trusted while it resumes."""
import os


def unknown_options(cfg, options):
    """The --cfg-options keys that name nothing in the config (MMEngine would add them silently)."""
    bad, tree = [], cfg.to_dict()
    for key in options or {}:
        node = tree
        for part in key.split("."):
            if isinstance(node, (list, tuple)) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            elif isinstance(node, dict) and part in node:
                node = node[part]
            else:
                bad.append(key)
                break
    return bad


def trust_own_checkpoints(runner):
    """MMEngine 0.10 resumes through torch.load's default, weights_only=True since torch 2.6, and its
    own checkpoints hold pickled logging objects. Those files are this run's own: load them fully, in
    this runner's resume() only (every other load stays weights_only)."""
    resume = runner.resume

    def resume_trusted(*args, **kwargs):
        old = os.environ.get("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD")
        os.environ["TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"] = "1"
        try:
            return resume(*args, **kwargs)
        finally:
            if old is None:
                del os.environ["TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"]
            else:
                os.environ["TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"] = old

    runner.resume = resume_trusted
