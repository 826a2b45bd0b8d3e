"""What the MMEngine runners (MMSeg and mmpretrain) share: --cfg-options checked against the config,
and the run's own checkpoints trusted while it resumes."""
import os

from transfer import BadInput


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


def build_cfg(config, overrides=()):
    """The one way an MMEngine protocol config is built: the file, then the --cfg-options dict (as
    DictAction parses it), of keys the config has."""
    from mmengine.config import Config

    if not os.path.isfile(config):
        raise BadInput(f"--config {config}: no such file")
    try:
        cfg = Config.fromfile(config)
    except Exception as e:  # mmengine raises many types for a config it cannot read
        raise BadInput(f"--config {config}: cannot be read ({type(e).__name__}: {str(e).splitlines()[0][:200]}); "
                       "fix the file") from None
    bad = unknown_options(cfg, overrides)
    if bad:
        raise BadInput(f"--cfg-options {', '.join(bad)}: no such key in {config}; check the spelling against the "
                       "config (MMEngine would add it silently and change nothing)")
    if overrides:
        cfg.merge_from_dict(dict(overrides))
    return cfg


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
