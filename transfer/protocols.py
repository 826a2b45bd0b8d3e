"""Every suite task, declared once as data: its framework and runner, config files, the backbones it
accepts, the metrics it reports, the published numbers beside them and the protocol facts that the
fingerprint checks. `run_suite`, `report`, `fingerprint`, the data check and the tests read this table;
adding a protocol is one entry here, its config files and, where the framework needs one, a runner.

A runner is a module run as `python -m RUNNER --config CFG --data-root ROOT --work-dir RUN --seed N
[--weights W] [--num-gpus G ...] [--opts ...]`; it writes RUN/final_metrics.json (the framework's own
results dict) and RUN/fingerprint.json (`transfer.fingerprint.write`).
"""
from dataclasses import dataclass, field

RGB_MEAN, RGB_STD = [123.675, 116.28, 103.53], [58.395, 57.12, 57.375]
TORCHVISION_STEM = "7x7 conv (torchvision)"
VARIANTS = ("full", "lowgpu", "quick")  # the published protocol, fewer GPUs (same images per update), built-in data


@dataclass(frozen=True)
class Ref:
    """A published number and where it was published."""
    value: float
    source: str


@dataclass(frozen=True)
class Protocol:
    name: str  # the suite's --task name
    framework: str  # detectron2 | mmseg: how run_suite launches the runner
    runner: str  # module run with `python -m`
    configs: dict  # variant -> path under configs/ (no 'lowgpu' where nothing depends on the batch)
    data: str  # the data check that covers it (mocodata.validate.check_task)
    weights: str  # the form the runner reads: detectron2 (.pkl) | mmseg (.pth)
    metrics: tuple  # report rows, as report.flat_metrics names the framework's results
    published: dict = field(default_factory=dict)  # metric -> Ref (MoCo v2 200 ep unless the source says)
    facts: dict = field(default_factory=dict)  # protocol facts; the fingerprint lists every deviation
    archs: tuple = ("resnet50",)  # backbones it accepts (converters.sources arch names)
    gpus: int = 8  # GPUs of the published run

    def config(self, variant):
        if variant not in self.configs:
            raise KeyError(f"{self.name} has no {variant} variant (it has {', '.join(self.configs)})")
        return self.configs[variant]


MOCO_DET = "moco detection/README"
MMSELFSUP = "mmselfsup MoCo v2 README"
VITS = ("vit_small", "vit_base", "vit_large")
LOWSHOT_K = (1, 2, 4, 8, 16, 32, 64, 96)
SVM_FACTS = dict(preprocess={"resize": 256, "squash": 224, "interpolation": "bilinear"},
                 costs=[1.0, 10.0, 100.0] + [0.5 ** n for n in range(4, 20)], cv_folds=3,
                 normalise="x/(||x||+1e-5) float64", train_images=5011, test_images=4952, classes=20, skipped_classes=[])

TASKS = {p.name: p for p in [
    Protocol(
        name="voc", framework="detectron2", runner="transfer.detection.train_net", data="voc", weights="detectron2",
        configs={"full": "detectron2/pascal_voc_R_50_C4_24k_moco.yaml",
                 "lowgpu": "detectron2/pascal_voc_R_50_C4_24k_moco_lowgpu.yaml",
                 "quick": "detectron2/pascal_voc_R_50_C4_quick.yaml"},
        metrics=("bbox/AP50", "bbox/AP", "bbox/AP75"),
        published={"bbox/AP50": Ref(82.4, MOCO_DET), "bbox/AP": Ref(57.0, MOCO_DET), "bbox/AP75": Ref(63.6, MOCO_DET)},
        facts=dict(norm="naiveSyncBN", extra_res5_norm=True, input="RGB", pixel_mean=RGB_MEAN, pixel_std=RGB_STD,
                   stem=TORCHVISION_STEM, stride_in_1x1=False, freeze_at=0, precise_bn=True,
                   images_per_update=16, bn_images=16, base_lr=0.02, max_iter=24000, steps=[18000, 22000],
                   train_min_size=[480, 512, 544, 576, 608, 640, 672, 704, 736, 768, 800], test_size=800)),
    Protocol(
        name="coco", framework="detectron2", runner="transfer.detection.train_net", data="coco", weights="detectron2",
        configs={"full": "detectron2/coco_R_50_FPN_1x_moco.yaml",
                 "lowgpu": "detectron2/coco_R_50_FPN_1x_moco_lowgpu.yaml",
                 "quick": "detectron2/coco_R_50_FPN_quick.yaml"},
        metrics=("bbox/AP", "bbox/AP50", "bbox/AP75", "segm/AP", "segm/AP50", "segm/AP75"),
        published={"bbox/AP": Ref(40.2, MMSELFSUP), "bbox/AP50": Ref(59.7, MMSELFSUP), "bbox/AP75": Ref(44.2, MMSELFSUP),
                   "segm/AP": Ref(36.1, MMSELFSUP), "segm/AP50": Ref(56.7, MMSELFSUP), "segm/AP75": Ref(38.8, MMSELFSUP)},
        facts=dict(norm="SyncBN", fpn_norm="SyncBN", input="RGB", pixel_mean=RGB_MEAN, pixel_std=RGB_STD,
                   stem=TORCHVISION_STEM, stride_in_1x1=False, freeze_at=0, precise_bn=True,
                   images_per_update=16, bn_images=16, base_lr=0.02, max_iter=90000, steps=[60000, 80000],
                   train_min_size=[640, 672, 704, 736, 768, 800], test_size=800)),
    Protocol(
        name="seg", framework="mmseg", runner="transfer.segmentation.train", data="seg", weights="mmseg", gpus=4,
        configs={"full": "mmseg/fcn_r50-d8_4xb4-20k_voc12aug-512x512_moco.py",
                 "lowgpu": "mmseg/fcn_r50-d8_1xb4-20k_voc12aug-512x512_moco_lowgpu.py",
                 "quick": "mmseg/fcn_r50-d8_quick_voc12aug.py"},
        metrics=("sem_seg/mIoU",),
        published={"sem_seg/mIoU": Ref(67.55, MMSELFSUP)},
        facts=dict(backbone="ResNet", norm="SyncBN", norm_eval=False, input="RGB", pixel_mean=RGB_MEAN,
                   pixel_std=RGB_STD, stem=TORCHVISION_STEM, images_per_update=16, bn_images=16, base_lr=0.01,
                   max_iter=20000, schedule="poly 0.9, min lr 0.0001", crop=[512, 512], test="whole")),
    # config paths: '{vit}' is '_vit' for a ViT checkpoint, '' for a ResNet; '{recipe}' the pretraining recipe
    Protocol(
        name="knn", framework="torch", runner="transfer.classification.knn", data="imagenet-val", weights="checkpoint",
        configs={"full": "classification/knn_imagenet{vit}.yaml", "quick": "classification/knn_quick{vit}.yaml"},
        metrics=tuple(f"knn/top{t}_k{k}" for t in (1, 5) for k in (10, 20, 100, 200)),
        published={"knn/top1_k10": Ref(55.6, MMSELFSUP), "knn/top1_k20": Ref(55.7, MMSELFSUP),
                   "knn/top1_k100": Ref(53.7, MMSELFSUP), "knn/top1_k200": Ref(52.5, MMSELFSUP)},
        facts=dict(layer="gap", preprocess={"resize": 256, "crop": 224, "interpolation": "bilinear"},
                   k=[10, 20, 100, 200], temperature=0.07, normalise="l2", vote="sum exp(sim/T) one-hot",
                   num_classes=1000, train_images=1281167, val_images=50000),
        archs=("resnet50", *VITS), gpus=1),
    Protocol(
        name="svm", framework="sklearn", runner="transfer.classification.svm", data="voc07-cls", weights="checkpoint",
        configs={"full": "classification/svm_voc07{vit}.yaml", "quick": "classification/svm_quick{vit}.yaml"},
        metrics=tuple(f"svm/mAP_feat{i}" for i in (5, 1, 2, 3, 4)) + ("svm/mAP_cls",),
        published={"svm/mAP_feat5": Ref(84.04, MMSELFSUP)},
        facts=dict(SVM_FACTS, mode="full", layers=["feat1", "feat2", "feat3", "feat4", "feat5"]),
        archs=("resnet50", *VITS), gpus=1),
    Protocol(
        name="svm-lowshot", framework="sklearn", runner="transfer.classification.svm", data="voc07-cls",
        weights="checkpoint",
        configs={"full": "classification/svm_voc07_lowshot.yaml", "quick": "classification/svm_lowshot_quick.yaml"},
        metrics=tuple(f"svm_lowshot/mAP_feat5_k{k}" for k in LOWSHOT_K),
        published={f"svm_lowshot/mAP_feat5_k{k}": Ref(v, MMSELFSUP) for k, v in
                   zip(LOWSHOT_K, (43.14, 53.29, 65.34, 71.03, 75.42, 78.48, 80.88, 82.23))},
        facts=dict(SVM_FACTS, mode="lowshot", layers=["feat5"], lowshot_k=list(LOWSHOT_K), lowshot_samples=5,
                   negatives_per_positive=19), gpus=1),
]}
SUITE_ALL = ("voc", "coco", "seg")  # what `--task all` runs


def get(name):
    """The protocol called `name`; a KeyError that lists the known ones otherwise."""
    if name not in TASKS:
        raise KeyError(f"unknown task '{name}' (one of {', '.join(TASKS)})")
    return TASKS[name]
