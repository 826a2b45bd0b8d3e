"""Every suite task, declared once as data: its framework and runner, config files, the backbones it
accepts, the metrics it reports, the published numbers beside them and the protocol facts that the
fingerprint checks. `run_suite`, `report`, `fingerprint`, the data check and the tests read this table;
adding a protocol is one entry here, its config files and, where the framework needs one, a runner.

A runner is a module run as `python -m RUNNER --config CFG --data-root ROOT --work-dir RUN --seed N
[--weights W] [--num-gpus G ...] [--opts ...]`; it writes RUN/final_metrics.json (the framework's own
results dict) and RUN/fingerprint.json (`transfer.fingerprint.write`).
"""
from dataclasses import dataclass, field

from mococore.norm import MEAN_255 as RGB_MEAN, STD_255 as RGB_STD  # noqa: E402
TORCHVISION_STEM = "7x7 conv (torchvision)"
VARIANTS = ("full", "lowgpu", "quick")  # the published protocol, fewer GPUs (same images per update), built-in data


# The classification recipes follow the checkpoint's pretraining method: their facts are per recipe
# (a config names its recipe; the fingerprint compares a run with it).
# The official recipes, from the repository and file named above each.
LINEAR = dict(trained="head", backbone_eval=True, head_init_std=0.01, optimizer="SGD", momentum=0.9,
              nesterov=False, weight_decay=0.0, train_crop=224, test_resize=256, test_crop=224, num_classes=1000)
RECIPES = {
    # moco main_lincls.py
    "mocov2_r50": dict(LINEAR, features="res5 GAP", lr=30.0, images_per_update=256, epochs=100,
                       schedule="step x0.1 at [60, 80]"),
    # moco-v3 main_lincls.py + CONFIG.md: lr = 0.1 (R50) / 3 (ViT) x 1024 / 256
    "mocov3_r50": dict(LINEAR, features="res5 GAP", lr=0.4, images_per_update=1024, epochs=90,
                       schedule="cosine to 0 per epoch"),
    "mocov3_vit": dict(LINEAR, features="class token after the final LayerNorm", lr=12.0, images_per_update=1024,
                       epochs=90, schedule="cosine to 0 per epoch"),
}
STAGES = dict(trained="head", backbone_eval=True, head_init_std=0.01, optimizer="SGD", momentum=0.9, nesterov=True,
              weight_decay=0.0001, images_per_update=256, bn_images=256, lr=0.01,
              pools=[[10, 10, 4], [16, 8, 0], [13, 5, 0], [8, 3, 0], [6, 1, 0]],
              head_norm="BN2d affine=False momentum 0.1 (synchronised)")
RECIPES.update({
    # mmselfsup 0.x configs/benchmarks/classification/imagenet/resnet50_mhead_linear-8xb32-steplr-90e_in1k.py
    "mhead_imagenet": dict(STAGES, num_classes=1000, epochs=90, schedule="step x0.1 at [30, 60, 90]", train_crop=224,
                           color_jitter=[0.4, 0.4, 0.4, 0.0], lighting=0.1, test_resize=256, test_crop=224),
    # mmselfsup 0.x configs/benchmarks/classification/places205/resnet50_mhead_8xb32-steplr-28e_places205.py
    "mhead_places205": dict(STAGES, epochs=28, schedule="step x0.1 at [7, 14, 21]", train_crop=None,
                            train_resize=256, train_center_crop=256, train_random_crop=224, color_jitter=None,
                            lighting=None, test_resize=256, test_crop=224, num_classes=205),
    # mmselfsup 0.x configs/benchmarks/classification/inaturalist2018/resnet50_mhead_8xb32-steplr-84e_inat18.py
    "mhead_inat18": dict(STAGES, epochs=84, schedule="step x0.1 at [24, 48, 72]", train_crop=224, train_resize=None,
                         train_random_crop=None, color_jitter=None, lighting=None, test_resize=256, test_crop=224,
                         num_classes=8142),
})
# mmpretrain configs/mocov3/benchmarks/vit-{base,large}-p16_8xb64-coslr-*e_in1k.py (= DeiT main.py
# defaults with MoCo v3's epochs); ViT-S: 300 epochs (moco-v3#19), MoCo v3's 12 heads.
DEIT = dict(optimizer="AdamW", lr=5e-4, weight_decay=0.05, no_decay=["bias", "cls_token", "norm", "pos_embed"],
            clip_grad=5.0, images_per_update=512, label_smoothing=0.1, mixup=0.8, cutmix=1.0,
            randaugment="rand-m9-mstd0.5-inc1", random_erase=0.25, ema_momentum_per_update=4e-5, train_crop=224,
            test_resize=256, test_crop=224, num_classes=1000, trained="all",
            schedule="linear warmup 5 ep from x0.001, then cosine to 1e-05 per iteration")

FINETUNE_RECIPES = {
    "mocov3_vit_small": dict(DEIT, epochs=300, drop_path=0.1, num_heads=12),
    "mocov3_vit_base": dict(DEIT, epochs=150, drop_path=0.1, num_heads=12),
    "mocov3_vit_large": dict(DEIT, epochs=100, drop_path=0.5, num_heads=16),
}
RECIPES.update(FINETUNE_RECIPES)


@dataclass(frozen=True)
class Ref:
    """A published number, where it was published, what measured it and from which initialisation."""
    value: float
    source: str  # the document: repository and path, or paper and table
    setup: str = ""  # the framework and config that measured it, and where it differs from our protocol
    init: str = "MoCo"  # the backbone it started from: the checkpoint's method, or a baseline (BASELINE_INITS)
    arch: str = ""  # a baseline's backbone, shown for checkpoints of that arch ("": ResNet-50)

    def by(self):
        """'moco detection/README; detectron2, ...': who published it and what measured it."""
        return f"{self.source}; {self.setup}" if self.setup else self.source


# how run_suite launches a runner, and the weights forms run_suite converts a checkpoint to
FRAMEWORKS = ("detectron2", "detectron2-lazy", "mmseg", "mmpretrain", "torch", "sklearn")
WEIGHTS = ("detectron2", "mmseg", "mmpretrain", "checkpoint")


@dataclass(frozen=True)
class Protocol:
    name: str  # the suite's --task name
    framework: str  # one of FRAMEWORKS: how run_suite launches the runner
    runner: str  # module run with `python -m`
    configs: dict  # variant -> path under configs/ (no 'lowgpu' where nothing depends on the batch)
    data: str  # the data check that covers it (mocodata.validate.check_task)
    weights: str  # one of WEIGHTS: the form the runner reads (detectron2 .pkl, mmseg/mmpretrain .pth, or as given)
    metrics: tuple  # report rows, as report.flat_metrics names the framework's results
    published: dict = field(default_factory=dict)  # metric -> Ref, or -> {recipe or arch: Ref}
    baselines: dict = field(default_factory=dict)  # metric -> (Ref, ...): random init, supervised, ... (Ref.arch)
    facts: dict = field(default_factory=dict)  # protocol facts; the fingerprint lists every deviation
    archs: tuple = ("resnet50",)  # backbones it accepts (converters.sources arch names)
    gpus: int = 8  # GPUs of the published run
    derived: str = ""  # "" for a published protocol; else what it is and where it comes from (the report says so);
    # a derived protocol runs only when named (`--task all,NAME`), never as part of `all` or a group
    groups: tuple = ()  # the --task groups it belongs to (GROUPS)
    tier: int = 0  # its cost class (TIERS): `--task all` and the groups run the cheap tiers first
    recipes: tuple = ()  # the RECIPES its configs follow (per checkpoint method or ViT size), for its schedule

    def schedule(self):
        """Iterations or epochs, and images per update, of the full protocol (`--task list`)."""
        if "max_iter" in self.facts and "images_per_update" in self.facts:
            return f"{self.facts['max_iter']} iterations x {self.facts['images_per_update']} images per update"
        if self.recipes:
            return "; ".join(f"{r}: {RECIPES[r]['epochs']} epochs x {RECIPES[r]['images_per_update']} images per update"
                             for r in self.recipes)
        return "no training: features of every image once"

    def __post_init__(self):
        if self.framework not in FRAMEWORKS:
            raise ValueError(f"task {self.name}: framework {self.framework!r} is not one of {', '.join(FRAMEWORKS)}")
        if self.weights not in WEIGHTS:
            raise ValueError(f"task {self.name}: weights {self.weights!r} is not one of {', '.join(WEIGHTS)}")

    def refs(self, recipe=None, arch=None):
        """metric -> Ref for a checkpoint: some published numbers depend on its recipe or ViT size."""
        out = {}
        for metric, ref in self.published.items():
            ref = (ref.get(arch) or ref.get(recipe)) if isinstance(ref, dict) else ref
            if ref:
                out[metric] = ref
        return out

    def baseline_refs(self, arch=None):
        """metric -> (Ref, ...) of the baselines measured on the checkpoint's arch (ResNet-50 when not given)."""
        arch = arch or "resnet50"
        out = {m: tuple(r for r in refs if (r.arch or "resnet50") == arch) for m, refs in self.baselines.items()}
        return {m: refs for m, refs in out.items() if refs}

    def config(self, variant):
        if variant not in self.configs:
            raise KeyError(f"{self.name} has no {variant} variant (it has {', '.join(self.configs)})")
        return self.configs[variant]


# He et al. 2021, "Masked Autoencoders Are Scalable Vision Learners" (arXiv:2111.06377), row "MoCo v3", IN1K.
# Tab. 4 is Mask R-CNN on a plain ViT with FPN (their A.3; Li et al. 2021, arXiv:2111.11429), not ViTDet: the
# ViTDet paper (arXiv:2203.16527) has no MoCo v3 row (its Tab. 4: random init, IN-1K/21K supervised, MAE).
# Tab. 5 is UperNet on ADE20K, 100 epochs of 16 images, lr searched per entry (their A.4).
MAE_DET = ("MAE paper (arXiv:2111.06377) Tab. 4, row MoCo v3",
           "ViT + FPN Mask R-CNN (arXiv:2111.11429), NOT ViTDet (ours: detectron2 projects/ViTDet)")
MAE_SEG = ("MAE paper (arXiv:2111.06377) Tab. 5, row MoCo v3", "UperNet, 100 ep x 16 images, lr searched per entry")
# the same two tables' "supervised" row (IN1K w/ labels) as a per-size baseline; neither table has a scratch row
MAE_DET_SUP, MAE_SEG_SUP = ((MAE_DET[0].replace("MoCo v3", "supervised (IN1K w/ labels)"), MAE_DET[1]),
                            (MAE_SEG[0].replace("MoCo v3", "supervised (IN1K w/ labels)"), MAE_SEG[1]))
MOCO_DET = "moco detection/README"
MMSELFSUP = "mmselfsup MoCo v2 README"
# the framework and config behind each published number (mmselfsup: 1.x configs/benchmarks/...)
VOC_OURS = "detectron2, moco detection/configs/pascal_voc_R_50_C4_24k_moco.yaml (= ours)"
COCO_MMDET = ("mmdetection, mmselfsup mmdetection/coco/mask-rcnn_r50_fpn_ms-1x_coco.py "
              "(ours: detectron2 R50-FPN 1x, the same schedule in another framework)")
SEG_OURS = "MMSeg, mmselfsup mmsegmentation/voc12aug/fcn_r50-d8_4xb4-20k_voc12aug-512x512.py (= ours)"
KNN_MMS = "mmselfsup tools/benchmarks/classification/knn_imagenet (= ours)"
SVM_MMS = "mmselfsup tools/benchmarks/classification/svm_voc07 (= ours)"
LINCLS = "{} main_lincls.py (= ours)"
MHEAD = "mmpretrain, mmselfsup classification/{}.py (= ours)"
DEIT_FT = "DeiT main.py with moco-v3 CONFIG.md's settings (ours: the same recipe in mmpretrain)"
VITS = ("vit_small", "vit_base", "vit_large")
# layer_decay: ViT-B's (mmseg configs/mae); no ViT-L value is published, the ViT-L configs' 0.75 is a decision
# (see them) and a ViT-L run lists it as a deviation
UPERNET = dict(backbone="VisionTransformer", neck="MultiLevelNeck", base_lr=1e-4, weight_decay=0.05, layer_decay=0.65,
               warmup=1500, schedule="poly 1.0, min lr 0.0", crop=[512, 512], patch_bias=True, final_norm=True)
LOWSHOT_K = (1, 2, 4, 8, 16, 32, 64, 96)
SVM_FACTS = dict(preprocess={"resize": 256, "squash": 224, "interpolation": "bilinear"},
                 costs=[1.0, 10.0, 100.0] + [0.5 ** n for n in range(4, 20)], cv_folds=3,
                 normalise="x/(||x||+1e-5) float64", train_images=5011, test_images=4952, classes=20, skipped_classes=[])

# Baselines: the same benchmarks from random initialisation and from supervised ImageNet weights, so a
# checkpoint's number sits between them. OpenSelfSup's model zoo measured three ResNet-50s with one benchmark
# code base (open-mmlab/mmselfsup, branch openselfsup, docs/MODEL_ZOO.md at commit 0b768363; earlier versions
# of the file differ): rows "Random, kaiming", "ImageNet, torchvision" and "MoCo v2" (selfsup/moco/r50_v2.py).
# Its MoCo v2 numbers differ a little from the seeds' (mmselfsup 1.x); they are kept as one set with the other
# two, and `published` stays the MoCo reference. Its COCO table (Mask R-CNN R50-C4 2x) is another protocol than
# our R50-FPN 1x `coco` and is left out. The MoCo paper's own rows follow (PAPER_ROWS).
BASELINE_INITS = ("random", "supervised", "MoCo v2 (OpenSelfSup)", "MoCo v1 IN-1M")
ZOO = "OpenSelfSup docs/MODEL_ZOO.md @0b768363"
ZOO_SVM = "OpenSelfSup benchmarks/dist_test_svm_pretrain.sh (VOC07 SVM, cost by 3-fold CV)"
ZOO_MULTI = "OpenSelfSup configs/benchmarks/linear_classification/{}/r50_multihead.py, last epoch"
ZOO_LAST = "OpenSelfSup .../imagenet/r50_last.py (moco's lr 30, 100 ep, 256 per update), BEST epoch"
ZOO_VOC = "detectron2, OpenSelfSup benchmarks/detection/configs/pascal_voc_R_50_C4_24k_moco.yaml (= ours)"
# per init: VOC07 SVM (best layer, value), low-shot k=1..96 at that layer, ImageNet feat1-5 and avgpool,
# Places205 feat1-5, VOC07+12 Faster R-CNN C4 24k AP50/AP/AP75
ZOO_ROWS = {
    "random": dict(svm=("feat2", 30.54), lowshot=(9.15, 9.39, 11.09, 12.3, 14.3, 17.41, 21.32, 23.77),
                   imagenet=(11.37, 16.21, 13.47, 9.07, 6.54, 4.35), places=(17.19, 21.70, 19.23, 14.59, 11.73),
                   voc=(59.02, 32.83, 31.60)),
    "supervised": dict(svm=("feat5", 87.17), lowshot=(52.99, 63.55, 73.7, 78.79, 81.76, 83.75, 85.18, 85.97),
                       imagenet=(15.18, 33.96, 47.86, 67.56, 76.17, 74.12), places=(21.27, 36.10, 43.03, 51.38, 53.05),
                       voc=(81.58, 54.19, 59.80)),
    "MoCo v2 (OpenSelfSup)": dict(svm=("feat5", 84.26),
                                  lowshot=(43.0, 52.48, 63.43, 71.74, 76.35, 78.9, 81.31, 82.45),
                                  imagenet=(14.74, 32.81, 44.95, 61.61, 66.73, 67.69),
                                  places=(21.88, 35.75, 43.65, 49.99, 52.57), voc=(82.24, 56.97, 63.43)),
}


def zoo_refs(task, init, row):
    """metric -> Ref of one ZOO_ROWS row for one of our tasks (the ImageNet avgpool column is `linear`'s)."""
    layer, best = row["svm"]
    if task == "svm":  # a best-layer number: it goes to the row of its layer
        return {f"svm/mAP_{layer}": Ref(best, ZOO, f"{ZOO_SVM}; the row's best layer", init)}
    if task == "svm-lowshot":  # measured at the row's best layer, which for random init is not feat5
        at = f"{ZOO_SVM}, low-shot at {layer}" + ("" if layer == "feat5" else ", NOT feat5 (the row's best layer)")
        return {f"svm_lowshot/mAP_feat5_k{k}": Ref(v, ZOO, at, init) for k, v in zip(LOWSHOT_K, row["lowshot"])}
    if task in ("linear-stages", "linear-stages-places"):
        values, data = (row["imagenet"][:5], "imagenet") if task == "linear-stages" else (row["places"], "places205")
        return {f"feat{i}/top1": Ref(v, ZOO, ZOO_MULTI.format(data), init) for i, v in enumerate(values, 1)}
    if task == "linear":
        return {"accuracy/top1": Ref(row["imagenet"][5], ZOO, ZOO_LAST, init)}
    return {m: Ref(v, ZOO, ZOO_VOC, init) for m, v in zip(("bbox/AP50", "bbox/AP", "bbox/AP75"), row["voc"])}


def merge(*refs):
    """metric -> (Ref, ...) of {metric: Ref} dicts, in their order."""
    out = {}
    for one in refs:
        for metric, ref in one.items():
            out[metric] = out.get(metric, ()) + (ref,)
    return out


def zoo_baselines(task, *extra):
    """metric -> (Ref, ...): the zoo's three rows for `task`, then any `extra` {metric: Ref} dicts."""
    return merge(*[zoo_refs(task, init, row) for init, row in ZOO_ROWS.items()], *extra)


# The MoCo paper's rows (He et al., arXiv:1911.05722) "random init.", "super. IN-1M" and "MoCo IN-1M" (MoCo v1,
# 200 ep) where its protocol is ours. Table 2b: Faster R-CNN R50-C4, VOC07+12, 24k iterations, BN tuned and synced,
# "the same setup is used for all entries" (Sec. 4.2.1), means of 5 trials; moco's detection/configs are that setup
# (its README's supervised and MoCo v1 rows are Table 2b's). Table 5a: Mask R-CNN R50-FPN 1x in Detectron2, BN
# tuned and synced in the backbone and in the new layers, "e.g., FPN" (Sec. 4.2); moco released no FPN config, so
# what its heads normalise is not known, and the setup says so. Left out as other protocols: Table 2a
# (R50-dilated-C5), Table 5b-d (FPN 2x, C4 1x/2x), Table 6's semantic segmentation (its own FCN, Appendix A.5).
PAPER = "MoCo paper (arXiv:1911.05722)"
PAPER_COCO = ("detectron2, Mask R-CNN R50-FPN 1x, SyncBN in the backbone and the new layers, e.g. FPN (paper Sec. "
              "4.2); config not released, so its head norms may differ from ours (SyncBN in backbone and FPN only)")
PAPER_ROWS = {  # task: (table, metrics in the table's column order, setup, {init: values})
    "voc": ("Table 2b", ("bbox/AP50", "bbox/AP", "bbox/AP75"), VOC_OURS + ", mean of 5 trials",
            {"random": (60.2, 33.8, 33.1), "supervised": (81.3, 53.5, 58.8), "MoCo v1 IN-1M": (81.5, 55.9, 62.6)}),
    "coco": ("Table 5a", ("bbox/AP", "bbox/AP50", "bbox/AP75", "segm/AP", "segm/AP50", "segm/AP75"), PAPER_COCO,
             {"random": (31.0, 49.5, 33.2, 28.5, 46.8, 30.4), "supervised": (38.9, 59.6, 42.7, 35.4, 56.5, 38.1),
              "MoCo v1 IN-1M": (38.5, 58.9, 42.0, 35.1, 55.9, 37.7)}),
}


def paper_refs(task):
    """[{metric: Ref}, ...]: the MoCo paper's rows for `task`, one dict per initialisation."""
    table, metrics, setup, rows = PAPER_ROWS[task]
    return [{m: Ref(v, f"{PAPER} {table}", setup, init) for m, v in zip(metrics, values)}
            for init, values in rows.items()]


TASKS = {p.name: p for p in [
    Protocol(
        groups=("dense", "seeds"), tier=2,
        name="voc", framework="detectron2", runner="transfer.detection.train_net", data="voc", weights="detectron2",
        configs={"full": "detectron2/pascal_voc_R_50_C4_24k_moco.yaml",
                 "lowgpu": "detectron2/pascal_voc_R_50_C4_24k_moco_lowgpu.yaml",
                 "quick": "detectron2/pascal_voc_R_50_C4_quick.yaml"},
        metrics=("bbox/AP50", "bbox/AP", "bbox/AP75"),
        published={"bbox/AP50": Ref(82.4, MOCO_DET, VOC_OURS), "bbox/AP": Ref(57.0, MOCO_DET, VOC_OURS),
                   "bbox/AP75": Ref(63.6, MOCO_DET, VOC_OURS)},
        baselines=zoo_baselines(
            "voc", *paper_refs("voc"),
            {"bbox/AP50": Ref(81.06, MMSELFSUP, "mmdetection, mmselfsup mmdetection/voc0712/"
                                                "faster-rcnn_r50-c4_ms-24k_voc0712.py: NOT ours", "MoCo v2 (mmselfsup)")}),
        facts=dict(norm="naiveSyncBN", extra_res5_norm=True, input="RGB", pixel_mean=RGB_MEAN, pixel_std=RGB_STD,
                   stem=TORCHVISION_STEM, stride_in_1x1=False, freeze_at=0, precise_bn=True,
                   images_per_update=16, bn_images=16, base_lr=0.02, max_iter=24000, steps=[18000, 22000],
                   train_min_size=[480, 512, 544, 576, 608, 640, 672, 704, 736, 768, 800], test_size=800)),
    Protocol(
        groups=("dense", "seeds"), tier=3,
        name="coco", framework="detectron2", runner="transfer.detection.train_net", data="coco", weights="detectron2",
        configs={"full": "detectron2/coco_R_50_FPN_1x_moco.yaml",
                 "lowgpu": "detectron2/coco_R_50_FPN_1x_moco_lowgpu.yaml",
                 "quick": "detectron2/coco_R_50_FPN_quick.yaml"},
        metrics=("bbox/AP", "bbox/AP50", "bbox/AP75", "segm/AP", "segm/AP50", "segm/AP75"),
        published={m: Ref(v, MMSELFSUP, COCO_MMDET) for m, v in zip(
            ("bbox/AP", "bbox/AP50", "bbox/AP75", "segm/AP", "segm/AP50", "segm/AP75"), (40.2, 59.7, 44.2, 36.1, 56.7, 38.8))},
        baselines=merge(*paper_refs("coco")),
        facts=dict(norm="SyncBN", fpn_norm="SyncBN", input="RGB", pixel_mean=RGB_MEAN, pixel_std=RGB_STD,
                   stem=TORCHVISION_STEM, stride_in_1x1=False, freeze_at=0, precise_bn=True,
                   images_per_update=16, bn_images=16, base_lr=0.02, max_iter=90000, steps=[60000, 80000],
                   train_min_size=[640, 672, 704, 736, 768, 800], test_size=800)),
    Protocol(
        groups=("dense", "seeds"), tier=2,
        name="seg", framework="mmseg", runner="transfer.segmentation.train", data="seg", weights="mmseg", gpus=4,
        configs={"full": "mmseg/fcn_r50-d8_4xb4-20k_voc12aug-512x512_moco.py",
                 "lowgpu": "mmseg/fcn_r50-d8_1xb4-20k_voc12aug-512x512_moco_lowgpu.py",
                 "quick": "mmseg/fcn_r50-d8_quick_voc12aug.py"},
        metrics=("sem_seg/mIoU",),
        published={"sem_seg/mIoU": Ref(67.55, MMSELFSUP, SEG_OURS)},
        facts=dict(backbone="ResNet", norm="SyncBN", norm_eval=False, input="RGB", pixel_mean=RGB_MEAN,
                   pixel_std=RGB_STD, stem=TORCHVISION_STEM, images_per_update=16, bn_images=16, base_lr=0.01,
                   max_iter=20000, schedule="poly 0.9, min lr 0.0001", crop=[512, 512], test="whole")),
    # config paths: '{vit}' is '_vit' for a ViT checkpoint, '' for a ResNet; '{recipe}' the pretraining recipe
    Protocol(
        groups=("classification", "seeds"), tier=0,
        name="knn", framework="torch", runner="transfer.classification.knn", data="imagenet-val", weights="checkpoint",
        configs={"full": "classification/knn_imagenet{vit}.yaml", "quick": "classification/knn_quick{vit}.yaml"},
        metrics=tuple(f"knn/top{t}_k{k}" for t in (1, 5) for k in (10, 20, 100, 200)),
        published={f"knn/top1_k{k}": {"mocov2_r50": Ref(v, MMSELFSUP, KNN_MMS)}  # MoCo v2 R50 only: no ViT number
                   for k, v in zip((10, 20, 100, 200), (55.6, 55.7, 53.7, 52.5))},
        facts=dict(layer="gap", preprocess={"resize": 256, "crop": 224, "interpolation": "bilinear"},
                   k=[10, 20, 100, 200], temperature=0.07, normalise="l2", vote="sum exp(sim/T) one-hot",
                   num_classes=1000, train_images=1281167, val_images=50000),
        archs=("resnet50", *VITS), gpus=1),
    Protocol(
        groups=("classification", "seeds"), tier=0,
        name="svm", framework="sklearn", runner="transfer.classification.svm", data="voc07-cls", weights="checkpoint",
        configs={"full": "classification/svm_voc07{vit}.yaml", "quick": "classification/svm_quick{vit}.yaml"},
        metrics=tuple(f"svm/mAP_feat{i}" for i in (5, 1, 2, 3, 4)) + ("svm/mAP_cls",),
        published={"svm/mAP_feat5": Ref(84.04, MMSELFSUP, SVM_MMS)}, baselines=zoo_baselines("svm"),
        facts=dict(SVM_FACTS, mode="full", layers=["feat1", "feat2", "feat3", "feat4", "feat5"]),
        archs=("resnet50", *VITS), gpus=1),
    Protocol(
        groups=("classification", "seeds"), tier=0,
        name="svm-lowshot", framework="sklearn", runner="transfer.classification.svm", data="voc07-cls",
        weights="checkpoint",
        configs={"full": "classification/svm_voc07_lowshot.yaml", "quick": "classification/svm_lowshot_quick.yaml"},
        metrics=tuple(f"svm_lowshot/mAP_feat5_k{k}" for k in LOWSHOT_K),
        published={f"svm_lowshot/mAP_feat5_k{k}": Ref(v, MMSELFSUP, SVM_MMS) for k, v in
                   zip(LOWSHOT_K, (43.14, 53.29, 65.34, 71.03, 75.42, 78.48, 80.88, 82.23))},
        baselines=zoo_baselines("svm-lowshot"),
        facts=dict(SVM_FACTS, mode="lowshot", layers=["feat5"], lowshot_k=list(LOWSHOT_K), lowshot_samples=5,
                   negatives_per_positive=19), gpus=1),
    Protocol(
        groups=("classification", "seeds"), tier=1, recipes=("mocov2_r50", "mocov3_r50", "mocov3_vit"),
        name="linear", framework="mmpretrain", runner="transfer.classification.linear", data="imagenet-val",
        weights="mmpretrain", configs={v: f"mmpretrain/linear_{{recipe}}{s}.py" for v, s in
                                       (("full", ""), ("lowgpu", "_lowgpu"), ("quick", "_quick"))},
        metrics=("accuracy/top1", "accuracy/top5"),
        published={"accuracy/top1": {
            "mocov2_r50": Ref(67.5, "moco README, 200 ep", LINCLS.format("moco")),
            "mocov3_r50": Ref(68.9, "moco-v3 README, 100 ep (300 ep: 72.8, 1000 ep: 74.6)", LINCLS.format("moco-v3")),
            "vit_small": Ref(73.2, "moco-v3 README", LINCLS.format("moco-v3")),
            "vit_base": Ref(76.7, "moco-v3 README", LINCLS.format("moco-v3"))}},
        baselines=zoo_baselines("linear"),
        archs=("resnet50", *VITS)),
    Protocol(
        groups=("classification", "seeds"), tier=1, recipes=("mhead_imagenet",),
        name="linear-stages", framework="mmpretrain", runner="transfer.classification.linear", data="imagenet-val",
        weights="mmpretrain", configs={"full": "mmpretrain/linear-stages_r50.py",
                                       "lowgpu": "mmpretrain/linear-stages_r50_lowgpu.py",
                                       "quick": "mmpretrain/linear-stages_r50_quick.py"},
        metrics=tuple(f"feat{i}/top1" for i in range(1, 6)),
        published={f"feat{i}/top1": Ref(v, MMSELFSUP, MHEAD.format("imagenet/resnet50_mhead_linear-8xb32-steplr-90e_in1k"))
                   for i, v in enumerate((15.96, 34.22, 45.78, 61.11, 66.24), 1)},
        baselines=zoo_baselines("linear-stages")),
    Protocol(
        groups=("classification", "seeds"), tier=1, recipes=("mhead_places205",),
        name="linear-stages-places", framework="mmpretrain", runner="transfer.classification.linear",
        data="places205", weights="mmpretrain",
        configs={"full": "mmpretrain/linear-stages_r50_places205.py",
                 "lowgpu": "mmpretrain/linear-stages_r50_places205_lowgpu.py",
                 "quick": "mmpretrain/linear-stages_r50_places205_quick.py"},
        metrics=tuple(f"feat{i}/top1" for i in range(1, 6)),
        published={f"feat{i}/top1": Ref(v, MMSELFSUP, MHEAD.format("places205/resnet50_mhead_8xb32-steplr-28e_places205"))
                   for i, v in enumerate((20.92, 35.72, 42.62, 49.79, 52.25), 1)},
        baselines=zoo_baselines("linear-stages-places")),
    # no published MoCo number: neither mmselfsup's MoCo v2/v3 READMEs (nor OpenSelfSup's zoo) nor VISSL's
    # model zoo report iNat18
    Protocol(
        groups=("classification",), tier=1, recipes=("mhead_inat18",),
        name="linear-stages-inat18", framework="mmpretrain", runner="transfer.classification.linear",
        data="inat18", weights="mmpretrain",
        configs={"full": "mmpretrain/linear-stages_r50_inat18.py",
                 "lowgpu": "mmpretrain/linear-stages_r50_inat18_lowgpu.py",
                 "quick": "mmpretrain/linear-stages_r50_inat18_quick.py"},
        metrics=tuple(f"feat{i}/top1" for i in range(1, 6))),
    Protocol(
        groups=("classification", "seeds"), tier=3, recipes=tuple(FINETUNE_RECIPES),
        name="finetune", framework="mmpretrain", runner="transfer.classification.finetune", data="imagenet-val",
        weights="mmpretrain", configs={"full": "mmpretrain/finetune_{arch}.py", "lowgpu": "mmpretrain/finetune_{arch}_lowgpu.py",
                                       "quick": "mmpretrain/finetune_vit_quick.py"},
        metrics=("accuracy/top1", "accuracy/top5"),
        published={"accuracy/top1": {
            "vit_small": Ref(81.4, "moco-v3#19, 300 ep", DEIT_FT), "vit_base": Ref(83.2, "moco-v3 README", DEIT_FT),
            "vit_large": Ref(83.7, "mmselfsup MoCo v3 README", "mmpretrain, mmselfsup classification/imagenet/"
                                                               "vit-large-p16_ft-8xb64-coslr-100e_in1k.py (= ours)")}},
        archs=VITS),
    # config paths: '{size}' is s/b/l for ViT-S/B/L
    Protocol(
        groups=("dense",), tier=3,
        name="coco-vitdet", framework="detectron2-lazy", runner="transfer.detection.lazy_train", data="coco",
        weights="detectron2", gpus=64, archs=VITS,
        configs={"full": "detectron2/vitdet/mask_rcnn_vitdet_{size}_100ep_moco.py",
                 "lowgpu": "detectron2/vitdet/mask_rcnn_vitdet_{size}_100ep_moco_lowgpu.py",
                 "quick": "detectron2/vitdet/mask_rcnn_vitdet_s_quick.py"},
        metrics=("bbox/AP", "bbox/AP50", "bbox/AP75", "segm/AP", "segm/AP50", "segm/AP75"),
        published={"bbox/AP": {"vit_base": Ref(47.9, *MAE_DET), "vit_large": Ref(49.3, *MAE_DET)},
                   "segm/AP": {"vit_base": Ref(42.7, *MAE_DET), "vit_large": Ref(44.0, *MAE_DET)}},
        baselines={m: tuple(Ref(v, *MAE_DET_SUP, "supervised", arch) for arch, v in zip(("vit_base", "vit_large"), vals))
                   for m, vals in (("bbox/AP", (47.9, 49.3)), ("segm/AP", (42.9, 43.9)))},
        facts=dict(backbone="ViT", window_size=14, use_rel_pos=True, pyramid_scales=[4.0, 2.0, 1.0, 0.5], input="RGB",
                   pixel_mean=RGB_MEAN, pixel_std=RGB_STD, optimizer="AdamW", base_lr=1e-4, weight_decay=0.1,
                   images_per_update=64, max_iter=184375, steps=[163889, 177546], warmup_iters=250,
                   lsj=dict(size=1024, scale=[0.1, 2.0]), test_size=1024, amp=True)),
    Protocol(
        groups=("dense",), tier=3,
        name="ade20k-upernet", framework="mmseg", runner="transfer.segmentation.train", data="ade20k", weights="mmseg",
        gpus=8, archs=VITS,
        configs={"full": "mmseg/upernet_vit-{size}16_mln_8xb2-160k_ade20k-512x512_moco.py",
                 "lowgpu": "mmseg/upernet_vit-{size}16_mln_2xb2-160k_ade20k-512x512_moco_lowgpu.py",
                 "quick": "mmseg/upernet_vit-s16_quick_ade20k.py"},
        metrics=("sem_seg/mIoU",),
        published={"sem_seg/mIoU": {"vit_base": Ref(47.3, *MAE_SEG), "vit_large": Ref(49.1, *MAE_SEG)}},
        baselines={"sem_seg/mIoU": (Ref(47.4, *MAE_SEG_SUP, "supervised", "vit_base"),
                                    Ref(49.9, *MAE_SEG_SUP, "supervised", "vit_large"))},
        facts=dict(UPERNET, images_per_update=16, max_iter=160000, test="slide")),
    Protocol(
        groups=("dense",), tier=2,
        name="seg-upernet", framework="mmseg", runner="transfer.segmentation.train", data="seg", weights="mmseg",
        gpus=4, archs=VITS,
        configs={"full": "mmseg/upernet_vit-{size}16_mln_4xb4-20k_voc12aug-512x512_moco.py",
                 "lowgpu": "mmseg/upernet_vit-{size}16_mln_1xb4-20k_voc12aug-512x512_moco_lowgpu.py",
                 "quick": "mmseg/upernet_vit-s16_quick_voc12aug.py"},
        metrics=("sem_seg/mIoU",), facts=dict(UPERNET, images_per_update=16, max_iter=20000)),
    Protocol(
        groups=("dense",), tier=2,
        name="cityscapes", framework="mmseg", runner="transfer.segmentation.train", data="cityscapes", weights="mmseg",
        gpus=4, configs={"full": "mmseg/fcn_r50-d8_4xb2-40k_cityscapes-769x769_moco.py",
                         "lowgpu": "mmseg/fcn_r50-d8_1xb2-40k_cityscapes-769x769_moco_lowgpu.py",
                         "quick": "mmseg/fcn_r50-d8_quick_cityscapes.py"},
        metrics=("sem_seg/mIoU",),
        baselines={"sem_seg/mIoU": (Ref(71.47, "mmseg configs/fcn/metafile.yaml", "MMSeg fcn_r50-d8_4xb2-40k_cityscapes-"
                                                  "769x769, ResNetV1c (deep stem), single scale", "supervised"),)},
        facts=dict(backbone="ResNet", norm="SyncBN", norm_eval=False, input="RGB", pixel_mean=RGB_MEAN,
                   pixel_std=RGB_STD, stem=TORCHVISION_STEM, images_per_update=8, bn_images=8, base_lr=0.01,
                   max_iter=40000, schedule="poly 0.9, min lr 0.0001", crop=[769, 769], test="slide")),
]}
# Faster protocols derived from published ones: not published themselves, so no published number beside them.
# linear-sweep: dinov2 eval/linear.py's many heads on one forward (13 learning rates, as its 13-value grid), the
# grid centred on the recipe's lr; chosen on a holdout of train (holdout.py), never on val as dinov2 does.
SWEEP_FACTS = dict(lr_factors=[10 ** (i / 6 - 1) for i in range(13)], holdout_fraction=0.1, holdout_seed=0,
                   vit_variants=["cls", "cls+avgpool"], selection="holdout top-1", refit_on_all_train=False)
TASKS.update({p.name: p for p in [
    Protocol(
        groups=("classification",), tier=1, recipes=TASKS["linear"].recipes,
        name="linear-sweep", framework="mmpretrain", runner="transfer.classification.sweep", data="imagenet-val",
        weights="mmpretrain", configs=TASKS["linear"].configs, archs=TASKS["linear"].archs,
        metrics=("accuracy/top1", "accuracy/top5", "sweep/lr", "sweep/holdout_top1"), facts=SWEEP_FACTS,
        derived="the linear probe's recipe at 13 learning rates (0.1x-10x) in one pass, as dinov2 eval/linear.py; "
                "head chosen on 10% of train, trained on the other 90% (not refit)"),
    # logreg: dinov2 eval/log_regression.py (configs/classification/logreg_imagenet.yaml holds its values)
    Protocol(
        groups=("classification",), tier=0,
        name="logreg", framework="torch", runner="transfer.classification.logreg", data="imagenet-val",
        weights="checkpoint", archs=("resnet50", *VITS), gpus=1,
        configs={"full": "classification/logreg_imagenet{vit}.yaml", "quick": "classification/logreg_quick{vit}.yaml"},
        metrics=("logreg/top1", "logreg/top5", "logreg/log10_C", "logreg/holdout_top1"),
        facts=dict(preprocess={"resize": 224, "crop": 224, "interpolation": "bicubic"},
                   c_powers={"start": -6, "stop": 5, "num": 45}, max_iter=1000, tol=1e-12, lbfgs_memory=5,
                   dtype="float64", holdout_fraction=0.1, holdout_seed=0, refit_on_all_train=True),
        derived="dinov2 eval/log_regression.py: L2 multinomial logistic regression on frozen features, C from 45 "
                "values chosen on 10% of train, refit on all of train (torch L-BFGS, warm-started sweep)"),
]})
# `--task` groups; `all` is every task the checkpoint's backbone accepts (except the derived ones)
GROUPS = {
    "classification": "kNN, VOC07 SVMs, linear probes and fine-tuning on ImageNet, Places205 and iNaturalist 2018",
    "dense": "detection and segmentation: the backbone fine-tuned in Detectron2 or MMSegmentation",
    "seeds": "the benchmarks of the seeds' tables (mmselfsup's MoCo v2 README; for a ViT those that take one, "
             "and MoCo v3's fine-tuning)",
}
TIERS = ("features once", "heads on frozen features", "fine-tuning, short schedule", "fine-tuning, long schedule")


def select(text, arch="resnet50"):
    """The protocols that `--task text` names for a `arch` backbone: a comma list of task names and groups
    ('all', GROUPS); a group gives the tasks that accept the backbone, cheap tiers first (declaration order
    inside a tier); a task named twice runs once. A KeyError names an unknown entry."""
    out = {}
    for name in [t.strip() for t in text.split(",") if t.strip()]:
        if name in TASKS:
            out.setdefault(name, TASKS[name])
            continue
        if name != "all" and name not in GROUPS:
            raise KeyError(name)
        group = [p for p in TASKS.values() if arch in p.archs and not p.derived and (name == "all" or name in p.groups)]
        for p in sorted(group, key=lambda p: p.tier):
            out.setdefault(p.name, p)
    return list(out.values())


def get(name):
    """The protocol called `name`; a KeyError that lists the known ones otherwise."""
    if name not in TASKS:
        raise KeyError(f"unknown task '{name}' (one of {', '.join(TASKS)})")
    return TASKS[name]
