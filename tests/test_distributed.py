"""The cross-process parts of MoCo on 2 CPU processes (gloo): gathers, shuffled BN, the v3 labels,
and pretrain/run.py under torchrun. The same code is the identity at world size 1 (other tests)."""
import os
import socket
import subprocess
import sys

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
import torchvision

from pretrain import moco
from tests.conftest import REPO


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def worker(rank, port, q, k, out):
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    n = q.shape[0] // 2
    mine = slice(rank * n, (rank + 1) * n)
    torch.manual_seed(rank)  # different local generators: the permutation must come from rank 0
    gathered = moco.concat_all_gather(k[mine])
    # a per-sample "encoder" (x -> 2x): unshuffling must give each process its own samples back
    shuffled = moco.shuffled_bn_forward(lambda x: 2 * x, k[mine])
    m = moco.MoCoV3(torchvision.models.resnet18, dim=4, mlp_dim=8, T=0.5)
    loss = m.contrastive_loss(q[mine], k[mine])
    out[rank] = {"gathered": torch.equal(gathered, k), "unshuffled": torch.equal(shuffled, 2 * k[mine]),
                 "loss": loss.item()}
    dist.destroy_process_group()


def test_gather_shuffle_and_v3_loss_across_two_processes():
    torch.manual_seed(0)
    q, k = torch.randn(8, 4), torch.randn(8, 4)
    out = mp.Manager().dict()
    mp.spawn(worker, args=(free_port(), q, k, out), nprocs=2)
    assert all(out[r]["gathered"] and out[r]["unshuffled"] for r in (0, 1))
    # each process: its queries against all keys, labels offset by rank; the mean is the full-batch loss
    full = F.cross_entropy(F.normalize(q, dim=1) @ F.normalize(k, dim=1).T / 0.5, torch.arange(8)) * 2 * 0.5
    assert abs((out[0]["loss"] + out[1]["loss"]) / 2 - full.item()) < 1e-5


def test_torchrun_two_processes_on_cpu(tmp_path, demo_root):
    args = ["--preset", "tiny", "--data", os.path.join(demo_root, "imagenet", "train"), "--out", str(tmp_path),
            "--arch", "resnet18", "--epochs", "1", "--batch-size", "8", "--K", "16", "--crop", "32",
            "--mlp-dim", "32", "--workers", "0", "--knn-every", "0"]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(free_port()),
           "pretrain/run.py", *args]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    ck = torch.load(tmp_path / "checkpoint.pth", weights_only=True)
    assert ck["epoch"] == 1 and "module.queue" in ck["state_dict"]
    # 24 images, global batch 8: 3 iterations of 4 images per process
    assert "3 iterations/epoch" in (tmp_path / "log.txt").read_text()


def test_a_locked_out_stops_every_rank_at_once(tmp_path, demo_root):
    """Another run holds OUT/.lock: rank 0 refuses, and so does every other rank, at once (before,
    only rank 0 checked: a rank on another node waited for the process-group timeout). Two torchrun
    agents, one per "node", as on two machines (one agent does not stop the other's workers)."""
    import fcntl

    out = tmp_path / "out"
    out.mkdir()
    fd = os.open(out / ".lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    args = ["--preset", "tiny", "--data", os.path.join(demo_root, "imagenet", "train"), "--out", str(out),
            "--arch", "resnet18", "--epochs", "1", "--batch-size", "8", "--K", "16", "--crop", "32",
            "--mlp-dim", "32", "--workers", "0", "--knn-every", "0"]
    port = str(free_port())
    nodes = [subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--node_rank", str(r),
                               "--nproc_per_node", "1", "--master_addr", "127.0.0.1", "--master_port", port,
                               "pretrain/run.py", *args], cwd=REPO, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for r in (0, 1)]
    try:
        results = [p.communicate(timeout=120) for p in nodes]
    finally:
        for p in nodes:
            p.kill()
        os.close(fd)
    for (stdout, stderr), p in zip(results, nodes):
        assert "another pretraining run is using this folder" in stderr, stderr[-2000:]
        assert "exitcode  : 2" in stderr  # torchrun's summary of its worker's exit
    assert not (out / "checkpoint.pth").exists()
