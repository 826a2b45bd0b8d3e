"""SLURM through submitit: one task per GPU; a preempted or timed-out job requeues itself and
continues from OUT/checkpoint.pth (the run resumes exactly from its last checkpoint)."""
import os
import shutil

import submitit

from pretrain.config import ConfigError


class Job:
    """Runs train(cfg) on each task; `train` is passed in (pretrain.run.train), so this module
    does not import the one that imports it."""

    def __init__(self, cfg, train):
        self.cfg, self.train = cfg, train

    def __call__(self):
        # RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR/PORT from SLURM's variables, as torchrun sets them
        submitit.helpers.TorchDistributedEnvironment().export(set_cuda_visible_devices=False)
        return self.train(self.cfg)

    def checkpoint(self):
        return submitit.helpers.DelayedSubmission(Job(self.cfg, self.train))


def executor(cfg, args, cluster=None):
    if cluster is None and shutil.which("sbatch") is None:  # submitit would quietly run it here instead
        raise ConfigError("--slurm: SLURM's sbatch is not on PATH on this machine")
    ex = submitit.AutoExecutor(folder=os.path.join(cfg.out, "slurm", "%j"), cluster=cluster)
    ex.update_parameters(name=f"moco-{cfg.method}-{cfg.arch}", nodes=args.nodes, tasks_per_node=args.gpus_per_node,
                         gpus_per_node=args.gpus_per_node, cpus_per_task=max(1, cfg.workers),
                         timeout_min=args.timeout_min, slurm_partition=args.partition or None,
                         slurm_signal_delay_s=120)
    return ex


def submit(cfg, args, train, cluster=None):
    job = executor(cfg, args, cluster).submit(Job(cfg, train))
    print(f"submitted job {job.job_id}: logs in {os.path.join(cfg.out, 'slurm', str(job.job_id))}")
    return job
