"""The runner contract: what every task's runner (`Protocol.runner`) has and does.

    python -m RUNNER --config CFG --data-root ROOT --work-dir RUN --seed N [--weights W] [--num-gpus G ...]
                     [the framework's override flag: --opts (detectron2) | --cfg-options (MMEngine)]

- `build_cfg(config, overrides=())`: the one way the runner builds its config; run_suite calls it
  before any launch, with the same overrides the runner will get (BadInput names a key it lacks).
- `entry(main, argv)`: the one entry point; any user error (mococore.errors.UserError) is exit 2 with its
  one paragraph, never a traceback.
- `finish(run_dir, metrics[, task, facts])`: RUN/fingerprint.json and RUN/final_metrics.json, written
  atomically; final_metrics.json last, since the suite reads it as "this run finished".
"""
import os

from mococore.errors import UserError, refuse
from mococore.files import atomic_json, read_json
from transfer import fingerprint

FINAL, FINGERPRINT = "final_metrics.json", "fingerprint.json"


def entry(main, argv=None):
    """Runs main(argv); a user error is refused (exit 2, its paragraph on stderr)."""
    try:
        main(argv)
    except UserError as e:
        return refuse(str(e))
    return 0


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
