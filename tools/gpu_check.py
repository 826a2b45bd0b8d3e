"""One short check of the whole pretraining and feature path on a GPU (a benchmark, not a test).

    python tools/gpu_check.py                 # one GPU, at most about 4 minutes; writes output/gpu_check/
    python tools/gpu_check.py --dry           # every part at toy size on a CPU (the tests run this)
    make gpu-check [DRY=1]

It needs only torch, torchvision, timm, OpenCV and numpy (a bare CUDA image has them): no `make env`.
Writes OUT/gpu_check.json and OUT/gpu_check.md, with the card's name. Parts:
- peak: the bf16 matrix-product rate measured on this card (an 8192^3 product), the yardstick of MFU;
- steps: images/s, model FLOP utilisation (FLOPs counted by torch.utils.flop_counter over one real
  step, forward + backward + the key encoder) and peak memory of MoCo v2 R50, MoCo v3 R50 and ViT-S/B
  at 224 px, with bf16 and channels_last as the presets resolve them on a GPU: (a) the step alone on
  synthetic uint8 device tensors, (b) end to end with the `fast` CPU pipeline on all cores, (c) end to
  end with `--aug gpu`, both through the real loader and `engine.train_one_epoch` on ImageNet-sized JPEGs;
- numerics: bf16 against fp32 loss over the first 50 steps of MoCo v2 R50 on the same data;
- torchrun: `pretrain/run.py` launched by torchrun as one process, its process group (NCCL on a GPU);
- resume: a run stopped by SIGTERM mid-epoch and restarted against the uninterrupted run, and two
  uninterrupted runs against each other (cuDNN's kernels are not deterministic: the second difference
  is the floor the first is read against);
- knn: the weighted kNN of the suite over a 1.28M x 2048 bank of synthetic features, 50,000 queries;
- features: ResNet-50 feature extraction throughput (bf16, channels_last) at 224 px.
A part that fails is reported as failed with its reason; the others still run; the exit code is 1.
"""
import argparse
import dataclasses
import json
import math
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from multiprocessing import Pool

import cv2
import numpy as np
import torch

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
from mococore.files import atomic_json, atomic_text  # noqa: E402
from pretrain import config, data, engine, run  # noqa: E402

PARTS = ("peak", "steps", "numerics", "torchrun", "resume", "knn", "features")
PRESETS = {"MoCo v2 R50": "mocov2_200ep", "MoCo v3 R50": "mocov3_r50_100ep",
           "MoCo v3 ViT-S": "mocov3_vit_small", "MoCo v3 ViT-B": "mocov3_vit_base"}
DATASHEET_BF16 = {"H100": 989e12, "H200": 989e12, "A100": 312e12}  # dense bf16 FLOP/s, vendor datasheets
# sizes: the full check on one GPU, and --dry (toy sizes on a CPU, so the script keeps working)
FULL = dict(device="cuda", crop=224, vit_crop=224, batch=256, workers=os.cpu_count(), warm=5, timed=10, images=8192,
            classes=8, skip=8, numerics_batch=64, numerics_steps=50, bank=1_281_167, dim=2048, queries=50_000,
            knn_classes=1000, feat_batch=256, feat_rounds=20, run_images=256, run_crop=64, run_arch="resnet50",
            run_batch=16, models=tuple(PRESETS), floor_run=True)
DRY = dict(device="cpu", crop=32, vit_crop=16, batch=4, workers=1, warm=1, timed=1, images=8, classes=2, skip=1,
           numerics_batch=4, numerics_steps=3, bank=2000, dim=64, queries=100, knn_classes=10, feat_batch=4,
           feat_rounds=2, run_images=16, run_crop=32, run_arch="resnet18", run_batch=4,
           models=("MoCo v2 R50", "MoCo v3 ViT-S"),  # both methods, both backbones: every code path, half the time
           floor_run=False)  # on a CPU the resumed run must be bit-identical: no floor to measure


# --- data ------------------------------------------------------------------------------------

def write_jpeg(job):
    """One photo-like JPEG (smooth colour field + texture: a real JPEG's entropy), ImageNet's ~500x375."""
    path, seed, small = job
    rng = np.random.default_rng(seed)
    w, h = (int(rng.integers(40, 60)), int(rng.integers(36, 48))) if small else \
        (int(rng.integers(400, 600)), int(rng.integers(300, 450)))
    field = cv2.resize(rng.integers(0, 256, (max(h // 16, 2), max(w // 16, 2), 3), dtype=np.uint8), (w, h),
                       interpolation=cv2.INTER_CUBIC)
    img = np.clip(field + rng.normal(0, 12, (h, w, 3)), 0, 255).astype(np.uint8)
    cv2.imwrite(path, img, [cv2.IMWRITE_JPEG_QUALITY, 90])


def image_folder(root, n, classes, small):
    jobs = []
    for i in range(n):
        d = os.path.join(root, f"class{i % classes}")
        os.makedirs(d, exist_ok=True)
        jobs.append((os.path.join(d, f"{i}.jpg"), i, small))
    with Pool(os.cpu_count()) as pool:
        pool.map(write_jpeg, jobs, chunksize=64)
    return root


# --- measurement helpers ---------------------------------------------------------------------

def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def peak_rate(device, size):
    """Measured bf16 matrix-product FLOP/s: the mean of 10 products after 3 warm-ups."""
    a, b = (torch.randn(size, size, device=device, dtype=torch.bfloat16) for _ in range(2))
    for _ in range(3):
        a @ b
    sync(device)
    t0 = time.perf_counter()
    for _ in range(10):
        a @ b
    sync(device)
    return 10 * 2 * size ** 3 / (time.perf_counter() - t0)


def preset_cfg(preset, s, device, aug="fast", data_root=""):
    cfg = config.Config(**config.PRESETS[preset])
    cfg.batch_size, cfg.aug, cfg.data = s["batch"], aug, data_root
    cfg.crop = s["vit_crop"] if cfg.arch.startswith("vit") else s["crop"]
    cfg.K = max(cfg.K // cfg.batch_size, 1) * cfg.batch_size
    cfg.workers, cfg.print_freq, cfg.save_minutes, cfg.knn_every = s["workers"], 10 ** 9, 1e9, 0
    if device.type == "cpu":
        cfg.mlp_dim, cfg.dim = 64, 32
    return config.resolve(cfg, device)


def build(cfg, device):
    torch.manual_seed(cfg.seed)
    model = run.wrap(run.build_model(cfg), cfg, 1, device)
    return model, run.build_optimizer(cfg, model), engine.make_scaler(cfg, device)


def count_flops(fn):
    """FLOPs of everything fn runs, counted by torch's FlopCounterMode (2 per multiply-add)."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        fn()
    return counter.get_total_flops()


def model_step(model, opt, cfg, device, scaler, s):
    """(a): the training step alone on synthetic uint8 device tensors."""
    gen = torch.Generator(device=device).manual_seed(0)
    x1, x2 = (torch.randint(0, 256, (cfg.batch_size, 3, cfg.crop, cfg.crop), dtype=torch.uint8, device=device,
                            generator=gen) for _ in range(2))
    for _ in range(s["warm"]):
        engine.step(model, x1, x2, opt, cfg, cfg.moco_m, device, scaler)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    sync(device)
    t0 = time.perf_counter()
    for _ in range(s["timed"]):
        engine.step(model, x1, x2, opt, cfg, cfg.moco_m, device, scaler)
    sync(device)
    step_s = (time.perf_counter() - t0) / s["timed"]
    flops = count_flops(lambda: engine.step(model, x1, x2, opt, cfg, cfg.moco_m, device, scaler))
    peak_mem = torch.cuda.max_memory_allocated() if device.type == "cuda" else None
    return dict(images_per_s=cfg.batch_size / step_s, step_ms=1000 * step_s, flops_per_image=flops / cfg.batch_size,
                achieved_flops=flops / step_s, peak_memory_gib=peak_mem and peak_mem / 2 ** 30)


class TimedLoader:
    """The real loader, with the time at which each batch was asked for."""

    def __init__(self, loader):
        self.loader, self.times = loader, []

    def __len__(self):
        return len(self.loader)

    def __iter__(self):
        for batch in self.loader:
            self.times.append(time.perf_counter())
            yield batch


def end_to_end(model, opt, scaler, cfg, device, s):
    """(b)/(c): one epoch of the real loader and `engine.train_one_epoch`; images/s after `skip` batches
    (worker start-up and first decodes excluded)."""
    config.check(cfg)  # an --aug this checkout does not know is refused, never measured as another
    loader, sampler = data.two_crop_loader(cfg.data, cfg)
    sampler.set_epoch(0)
    timed = TimedLoader(loader)
    ctx = dict(device=device, scaler=scaler, health=engine.Health(), writer=None, log=None,
               save=lambda *a: None, rank=0)
    engine.train_one_epoch(model, timed, sampler, opt, cfg, 0, ctx)
    sync(device)
    end = time.perf_counter()
    n = len(timed.times) - s["skip"]
    return dict(images_per_s=n * cfg.batch_size / (end - timed.times[s["skip"]]), batches_timed=n,
                workers=cfg.workers)


def part_steps(s, device, work, peak):
    root = image_folder(os.path.join(work, "jpeg"), s["images"], s["classes"], device.type == "cpu")
    out = {}
    for name in s["models"]:
        cfg = preset_cfg(PRESETS[name], s, device)
        model, opt, scaler = build(cfg, device)
        row = dict(batch=cfg.batch_size, crop=cfg.crop, amp=cfg.amp, channels_last=cfg.channels_last)
        row["model_only"] = guarded(lambda: model_step(model, opt, cfg, device, scaler, s))
        if "achieved_flops" in row["model_only"]:
            row["model_only"]["mfu_measured_peak"] = row["model_only"]["achieved_flops"] / peak
        for aug in ("fast", "gpu"):
            c = dataclasses.replace(cfg, aug=aug, data=root)
            row[f"pipeline_{aug}"] = guarded(lambda c=c: end_to_end(model, opt, scaler, c, device, s))
        out[name] = row
        print(f"gpu_check: {name}: {json.dumps(row, default=str)}", flush=True)
        del model, opt, scaler
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return out


def part_numerics(s, device):
    """bf16 autocast against fp32 (cuDNN's TF32 off) from the same initialisation on the same batches."""
    curves = {}
    for amp in ("bf16", "none"):
        cfg = preset_cfg("mocov2_200ep", dict(s, batch=s["numerics_batch"]), device)
        cfg.amp = amp
        model, opt, scaler = build(cfg, device)
        gen = torch.Generator(device=device).manual_seed(1)
        tf32 = torch.backends.cudnn.allow_tf32
        torch.backends.cudnn.allow_tf32 = amp != "none"
        try:
            losses = []
            for _ in range(s["numerics_steps"]):
                x1, x2 = (torch.randint(0, 256, (cfg.batch_size, 3, cfg.crop, cfg.crop), dtype=torch.uint8,
                                        device=device, generator=gen) for _ in range(2))
                losses.append(engine.step(model, x1, x2, opt, cfg, cfg.moco_m, device, scaler)[0])
        finally:
            torch.backends.cudnn.allow_tf32 = tf32
        curves[amp] = losses
    diff = np.abs(np.array(curves["bf16"]) - np.array(curves["none"]))
    return dict(steps=len(diff), batch=s["numerics_batch"], max_abs_diff=float(diff.max()),
                mean_abs_diff=float(diff.mean()), final_bf16=curves["bf16"][-1], final_fp32=curves["none"][-1],
                loss_bf16=curves["bf16"], loss_fp32=curves["none"])


# --- the launcher parts: pretrain/run.py as a user runs it -----------------------------------

def run_args(s, root, out, epochs):
    return ["--preset", "tiny", "--data", root, "--out", out, "--arch", s["run_arch"], "--crop", str(s["run_crop"]),
            "--batch-size", str(s["run_batch"]), "--K", str(4 * s["run_batch"]), "--epochs", str(epochs),
            "--knn-every", "0", "--workers", "2", "--print-freq", "1"]


def subprocess_env():
    return dict(os.environ, PYTHONUNBUFFERED="1", PYTHONPATH=os.pathsep.join([REPO, os.environ.get("PYTHONPATH", "")]))


def part_torchrun(s, work):
    root = image_folder(os.path.join(work, "small"), s["run_images"], 2, True)
    out = os.path.join(work, "torchrun")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "1",
           os.path.join(REPO, "pretrain", "run.py"), *run_args(s, root, out, 1)]
    t0 = time.perf_counter()
    log = run_py(cmd)
    group = re.search(r"process group (\w+) x(\d+)", log)
    if not group:
        raise RuntimeError(f"no process group in torchrun's log: {log[-600:]}")
    return dict(backend=group.group(1), world=int(group.group(2)), seconds=time.perf_counter() - t0)


def run_py(cmd):
    proc = subprocess.run(cmd, capture_output=True, text=True, env=subprocess_env(), timeout=300)
    if proc.returncode:
        raise RuntimeError(f"{' '.join(cmd[1:3])} ... exit {proc.returncode}: {(proc.stdout + proc.stderr)[-600:]}")
    return proc.stdout + proc.stderr


def weights(path):
    return torch.load(path, map_location="cpu", weights_only=True)["state_dict"]


def rel_diff(a, b):
    """||a - b|| / ||a|| over every floating-point tensor of two state dicts."""
    keys = [k for k in a if a[k].is_floating_point()]
    num = math.sqrt(sum(float((a[k].double() - b[k].double()).pow(2).sum()) for k in keys))
    den = math.sqrt(sum(float(a[k].double().pow(2).sum()) for k in keys))
    return num / den


def stop_mid_run(cmd, ckpt):
    """Starts the run, sends SIGTERM once a mid-epoch checkpoint (epoch >= 1, iteration >= 1) exists."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=subprocess_env())
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        try:
            state = torch.load(ckpt, map_location="cpu", weights_only=True) if os.path.exists(ckpt) else {}
        except Exception:  # read while the run renames a new checkpoint over it: look again
            state = {}
        if state.get("epoch", 0) >= 1 and state.get("iter", 0) >= 1:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    proc.wait()
    state = torch.load(ckpt, map_location="cpu", weights_only=True)
    if not (state["epoch"] < 2 and state["iter"] >= 1):
        raise RuntimeError(f"the run ended (epoch {state['epoch']}) before SIGTERM reached it")
    return state["epoch"], state["iter"]


def part_resume(s, work):
    root = image_folder(os.path.join(work, "small"), s["run_images"], 2, True)
    script = os.path.join(REPO, "pretrain", "run.py")
    whole = ["whole", "again"] if s["floor_run"] else ["whole"]
    outs = {k: os.path.join(work, f"resume_{k}") for k in whole + ["stopped"]}
    for k in whole:
        run_py([sys.executable, script, *run_args(s, root, outs[k], 2)])
    cmd = [sys.executable, script, *run_args(s, root, outs["stopped"], 2), "--save-minutes", "0"]
    at = stop_mid_run(cmd, os.path.join(outs["stopped"], "checkpoint.pth"))
    run_py(cmd)
    w = {k: weights(os.path.join(v, "checkpoint.pth")) for k, v in outs.items()}
    differ = [k for k in w["whole"] if not torch.equal(w["whole"][k], w["stopped"][k])]
    resumed = rel_diff(w["whole"], w["stopped"])
    floor = rel_diff(w["whole"], w["again"]) if "again" in w else 0.0
    return dict(stopped_at=dict(epoch=at[0], iteration=at[1]), tensors_differing=len(differ), tensors=len(w["whole"]),
                rel_diff_resumed=resumed, rel_diff_two_whole_runs=floor if "again" in w else None,
                tolerance="resumed <= 10 x two uninterrupted runs' difference + 1e-6 (on a CPU: exact)",
                within_tolerance=resumed <= 10 * floor + 1e-6, exact=not differ)


def part_knn(s, device):
    from transfer.classification.knn import knn_classify  # torch only: no framework import

    gen = torch.Generator(device=device).manual_seed(0)
    bank = torch.randn(s["bank"], s["dim"], device=device, generator=gen)
    labels = torch.randint(0, s["knn_classes"], (s["bank"],), device=device, generator=gen)
    queries = torch.randn(s["queries"], s["dim"], device=device, generator=gen)
    qlabels = torch.randint(0, s["knn_classes"], (s["queries"],), device=device, generator=gen)
    sync(device)
    t0 = time.perf_counter()
    acc = knn_classify(bank, labels, queries, qlabels, (10, 20, 100, 200), 0.07, s["knn_classes"], device=device)
    sync(device)
    secs = time.perf_counter() - t0
    return dict(bank=list(bank.shape), queries=s["queries"], k=[10, 20, 100, 200], seconds=secs,
                queries_per_s=s["queries"] / secs, top1_k20_chance_level=acc[20][0],
                bank_gib=bank.numel() * 4 / 2 ** 30)


def part_features(s, device):
    import torchvision

    model = torchvision.models.resnet50().to(device).eval()
    cl = device.type == "cuda"
    if cl:
        model = model.to(memory_format=torch.channels_last)
    x = torch.randn(s["feat_batch"], 3, s["crop"], s["crop"], device=device)
    x = x.contiguous(memory_format=torch.channels_last) if cl else x
    with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=cl):
        for _ in range(3):
            model(x)
        sync(device)
        t0 = time.perf_counter()
        for _ in range(s["feat_rounds"]):
            model(x)
        sync(device)
    secs = time.perf_counter() - t0
    return dict(images_per_s=s["feat_rounds"] * s["feat_batch"] / secs, batch=s["feat_batch"], bf16=cl,
                channels_last=cl)


# --- driver ----------------------------------------------------------------------------------

def guarded(fn):
    try:
        return fn()
    except Exception as e:  # one part's failure is reported; the others still run
        return {"failed": f"{type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''}"}


def card(device):
    if device.type != "cuda":
        return f"CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)"
    return torch.cuda.get_device_name(device)


def datasheet_peak(name):
    return next((v for k, v in DATASHEET_BF16.items() if k in name), None)


def fmt(v, unit=""):
    return "n/a" if v is None else f"{v:,.0f}{unit}" if abs(v) >= 100 else f"{v:.3g}{unit}"


def cell(res, key, unit=""):
    return f"failed: {res['failed']}" if "failed" in res else fmt(res.get(key), unit)


def markdown(r):
    lines = [f"# GPU check: {r['card']}", "", f"torch {r['torch']}, CUDA {r['cuda']}, {r['cpus']} CPU cores, "
             f"{r['seconds']:.0f} s in all{' (--dry: toy sizes, numbers mean nothing)' if r['dry'] else ''}.", ""]
    steps = r["parts"].get("steps", {})
    if "failed" not in steps:
        lines += ["| model | batch x crop | precision | step alone img/s | MFU (measured / datasheet peak) | "
                  "peak GiB | + fast CPU pipeline img/s | + --aug gpu img/s |", "|---|---|---|---|---|---|---|---|"]
        for name, row in steps.items():
            m = row["model_only"]
            mfu = "n/a" if "failed" in m else f"{100 * m['mfu_measured_peak']:.1f}% / " + (
                f"{100 * m['achieved_flops'] / r['datasheet_bf16']:.1f}%" if r["datasheet_bf16"] else "n/a")
            lines.append(f"| {name} | {row['batch']} x {row['crop']} | {row['amp']}"
                         f"{' + channels_last' if row['channels_last'] else ''} | {cell(m, 'images_per_s')} | {mfu} | "
                         f"{cell(m, 'peak_memory_gib')} | {cell(row['pipeline_fast'], 'images_per_s')} | "
                         f"{cell(row['pipeline_gpu'], 'images_per_s')} |")
        lines.append("")
    for part in ("peak", "numerics", "torchrun", "resume", "knn", "features"):
        res = dict(r["parts"].get(part, {}))
        res.pop("loss_bf16", None), res.pop("loss_fp32", None)
        lines.append(f"- {part}: {json.dumps(res, default=str)}")
    return "\n".join(lines) + "\n"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default=os.path.join(REPO, "output", "gpu_check"), help="folder for gpu_check.json/.md")
    p.add_argument("--dry", action="store_true", help="every part at toy size on a CPU (seconds, meaningless numbers)")
    p.add_argument("--parts", default=",".join(PARTS),
                   help="comma list of parts to run; default all")
    args = p.parse_args(argv)
    unknown = set(args.parts.split(",")) - set(PARTS)
    if unknown:
        print(f"error: --parts {args.parts}: unknown {sorted(unknown)} (the parts: {','.join(PARTS)})", file=sys.stderr)
        return 2
    s = DRY if args.dry else FULL
    if not args.dry and not torch.cuda.is_available():
        print("error: no CUDA device is visible to torch; run with --dry for the CPU toy check", file=sys.stderr)
        return 2
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        print(f"error: --out {args.out}: a file, not a folder; give a folder for gpu_check.json/.md", file=sys.stderr)
        return 2
    device = torch.device(s["device"])
    t0 = time.perf_counter()
    r = dict(card=card(device), torch=torch.__version__, cuda=torch.version.cuda, cpus=os.cpu_count(), dry=args.dry,
             datasheet_bf16=datasheet_peak(card(device)), parts={}, part_seconds={})
    work = tempfile.mkdtemp(prefix="gpu_check_")

    def peak():  # the measured rate when the peak part ran, else a quick one
        return r["parts"].get("peak", {}).get("bf16_flops_measured") or peak_rate(device, 256)

    parts = dict(peak=lambda: dict(bf16_flops_measured=peak_rate(device, 8192 if device.type == "cuda" else 256),
                                   bf16_flops_datasheet=r["datasheet_bf16"]),
                 steps=lambda: part_steps(s, device, work, peak()), numerics=lambda: part_numerics(s, device),
                 torchrun=lambda: part_torchrun(s, work), resume=lambda: part_resume(s, work),
                 knn=lambda: part_knn(s, device), features=lambda: part_features(s, device))
    try:
        for part in args.parts.split(","):
            t = time.perf_counter()
            r["parts"][part] = guarded(parts[part])
            r["part_seconds"][part] = time.perf_counter() - t
            print(f"gpu_check: {part} done in {r['part_seconds'][part]:.1f} s", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    r["seconds"] = time.perf_counter() - t0
    atomic_json(os.path.join(args.out, "gpu_check.json"), r, default=str)
    atomic_text(os.path.join(args.out, "gpu_check.md"), markdown(r))
    print(markdown(r))
    failed = [k for k, v in r["parts"].items() if "failed" in json.dumps(v)]
    if failed:
        print(f"gpu_check: failed parts: {', '.join(failed)} (see {args.out}/gpu_check.json)", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
