"""The runner contract: what every task's runner (`Protocol.runner`) has and does.

    python -m RUNNER --config CFG --data-root ROOT --work-dir RUN --seed N [--weights W] [--num-gpus G ...]
                     [the framework's override flag: --opts (detectron2) | --cfg-options (MMEngine)]

- `parser(...)`: that command line, declared here once; a runner adds only its own extras to it.

- `build_cfg(config, overrides=())`: the one way the runner builds its config; run_suite calls it
  before any launch, with the same overrides the runner will get (BadInput names a key it lacks).
- `entry(main, argv)`: the one entry point; any user error (mococore.errors.UserError) is exit 2 with its
  one paragraph, never a traceback.
- `finish(run_dir, metrics[, task, facts])`: RUN/fingerprint.json and RUN/final_metrics.json, written
  atomically; final_metrics.json last, since the suite reads it as "this run finished".
"""
import argparse
import os

from mococore.errors import UserError, refuse
from mococore.files import atomic_json, read_json
from transfer import fingerprint

FINAL, FINGERPRINT = "final_metrics.json", "fingerprint.json"

# each framework's own override flag, as its tools take it: MMEngine's tools/train.py --cfg-options
# key=value (parsed by DictAction), detectron2's yacs KEY VALUE pairs (tools/train_net.py takes them
# positionally; here after --opts, as run_suite passes them), LazyConfig's key=value (lazyconfig_train_net.py)
OVERRIDES = {
    "cfg-options": "MMEngine overrides key=value ..., of keys the config has (e.g. train_cfg.max_iters=2)",
    "opts": "detectron2 overrides KEY VALUE ..., of keys the config has (e.g. SOLVER.MAX_ITER 100)",
    "lazy-opts": "LazyConfig overrides key=value ..., of keys the config has (e.g. train.max_iter=100)",
}


def parser(description, config_help, data_help, weights_help, override=None, launcher=None):
    """The runner command line: --config --data-root --work-dir --seed --weights, the framework's override
    flag (`override`: cfg-options | opts | lazy-opts; None: the runner takes none, its recipe is its config)
    and its launcher's flags (`launcher`: mmengine = --launcher as torchrun runs it; detectron2 = launch()'s
    --num-gpus --num-machines --machine-rank --dist-url and --resume)."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--config", required=True, help=config_help)
    p.add_argument("--data-root", required=True, help=data_help)
    p.add_argument("--work-dir", required=True, help="the run's folder: logs, checkpoints, final_metrics.json, "
                                                     "fingerprint.json")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--weights", default=None, help=weights_help)
    if override == "cfg-options":
        from mmengine.config import DictAction

        p.add_argument("--cfg-options", nargs="+", action=DictAction, help=OVERRIDES[override])
    elif override in ("opts", "lazy-opts"):
        p.add_argument("--opts", nargs="*", default=[], help=OVERRIDES[override])
    elif override is not None:
        raise ValueError(f"override flag {override!r}: one of {', '.join(OVERRIDES)} or None")
    if launcher == "mmengine":
        p.add_argument("--launcher", default="none", choices=["none", "pytorch", "slurm", "mpi"])
        p.add_argument("--local_rank", "--local-rank", type=int, default=0)  # torch.distributed.launch passes it
    elif launcher == "detectron2":
        p.add_argument("--num-gpus", type=int, default=1, help="processes (GPUs) per machine")
        p.add_argument("--num-machines", type=int, default=1)
        p.add_argument("--machine-rank", type=int, default=0, help="this machine's rank, 0..num-machines-1")
        p.add_argument("--dist-url", default="auto", help="tcp://HOST:PORT of machine 0 (auto: a free local port)")
        p.add_argument("--resume", action="store_true", help="continue from the work dir's last checkpoint")
    elif launcher is not None:
        raise ValueError(f"launcher {launcher!r}: mmengine, detectron2 or None")
    return p


def entry(main, argv=None):
    """Runs main(argv): its exit code (0 unless it returns another int); a user error is refused (exit 2,
    its paragraph on stderr)."""
    try:
        rc = main(argv)
    except UserError as e:
        return refuse(str(e))
    return rc if isinstance(rc, int) else 0


def finish(run_dir, metrics, task=None, facts=None):
    """The run's results; `facts` when the fingerprint was not written at the start of the run."""
    if facts is not None:
        fingerprint.write(run_dir, task, facts)
    atomic_json(os.path.join(run_dir, FINAL), metrics)


def results(run_dir):
    """(metrics, fingerprint or None, None) of a finished run; (None, None, why) when final_metrics.json
    is missing, empty, truncated or corrupt, or fingerprint.json is there but unreadable."""
    metrics, why = read_json(os.path.join(run_dir, FINAL))
    if not metrics:
        return None, None, f"{os.path.join(run_dir, FINAL)}: {why or 'empty'}"
    fp, why = read_json(os.path.join(run_dir, FINGERPRINT))
    if why and why != "missing":
        return None, None, f"{os.path.join(run_dir, FINGERPRINT)}: {why}"
    return metrics, fp, None
