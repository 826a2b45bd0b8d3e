"""moco-transfer: MoCo v2/v3 pretraining, checkpoint converters and the dense transfer suite.

Install with `make test` (or `make env`): tools/setup_env.sh installs the pinned stack in
requirements/constraints.txt, including mmcv with its ops and detectron2 0.6 (see README).
"""
from setuptools import find_packages, setup

setup(
    name="moco-transfer",
    version="0.1.0",
    description="Pretrain MoCo v2/v3, convert checkpoints, and run the dense transfer benchmarks",
    python_requires=">=3.10,<3.13",
    packages=find_packages(include=["mococore*", "mocodata*", "pretrain*", "converters*", "transfer*"]),
    install_requires=[
        "torch==2.11.0",
        "torchvision==0.26.0",
        "timm",
        "numpy<2",
        "Pillow",
        "opencv-python",
        "pycocotools",
        "faster-coco-eval",
        "mmengine==0.10.7",
        "mmcv==2.1.0",
        "mmsegmentation==1.2.2",
        "ftfy",  # imported by mmseg, not declared by it
        "regex",  # imported by mmseg, not declared by it
        "mmpretrain==1.2.0",
        "detectron2==0.6",
        "shapely",  # imported by detectron2's LSJ crop of polygon masks (ViTDet), not declared by it
        "submitit",
        "tensorboard",
        "tqdm",
        "matplotlib",
        "scikit-learn",  # VOC07 SVMs (LinearSVC, cross_val_score) as the reference tools
    ],
    extras_require={"test": ["pytest", "pytest-timeout"]},
)
