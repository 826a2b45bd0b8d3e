"""The real frameworks run here, on CPU, with tiny inputs: the stack is installed for real."""
import pytest
import torch

from tests.conftest import config_path


def test_torchvision_nms():
    from torchvision.ops import nms

    boxes = torch.tensor([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]], dtype=torch.float)
    keep = nms(boxes, torch.tensor([0.9, 0.8, 0.7]), 0.5)
    assert keep.tolist() == [0, 2]


def d2_cfg(name):
    from detectron2.config import get_cfg

    from transfer.detection import heads  # noqa: F401
    from transfer.detection.train_net import adapt_to_world

    cfg = get_cfg()
    cfg.merge_from_file(config_path("detectron2", name))
    adapt_to_world(cfg, 1)
    return cfg


def d2_batch(with_masks):
    from detectron2.structures import BitMasks, Boxes, Instances

    image = torch.randint(0, 255, (3, 96, 128), dtype=torch.uint8)
    inst = Instances((96, 128))
    inst.gt_boxes = Boxes(torch.tensor([[10.0, 12.0, 60.0, 70.0], [70.0, 20.0, 120.0, 90.0]]))
    inst.gt_classes = torch.tensor([3, 7])
    if with_masks:
        m = torch.zeros(2, 96, 128, dtype=torch.bool)
        m[0, 12:70, 10:60] = True
        m[1, 20:90, 70:120] = True
        inst.gt_masks = BitMasks(m)
    return [{"image": image, "instances": inst, "height": 96, "width": 128}]


@pytest.mark.parametrize("name,masks", [("pascal_voc_R_50_C4_quick.yaml", False), ("coco_R_50_FPN_quick.yaml", True)])
def test_detectron2_train_step_and_inference(name, masks):
    from detectron2.modeling import build_model
    from detectron2.utils.events import EventStorage

    cfg = d2_cfg(name)
    model = build_model(cfg)
    if not masks:  # the MoCo VOC head: a norm after res5
        assert hasattr(model.roi_heads.res5, "norm")
    model.train()
    with EventStorage():
        losses = model(d2_batch(masks))
        total = sum(losses.values())
        total.backward()
    assert torch.isfinite(total)
    assert ("loss_mask" in losses) == masks
    model.eval()
    with torch.no_grad():
        out = model(d2_batch(masks))[0]["instances"]
    assert out.image_size == (96, 128)
    assert out.has("pred_masks") == masks


def test_mmseg_fcn_train_step_and_inference():
    from mmengine.config import Config
    from mmengine.model import revert_sync_batchnorm
    from mmengine.structures import PixelData
    from mmseg.registry import MODELS
    from mmseg.structures import SegDataSample
    from mmseg.utils import register_all_modules

    register_all_modules()
    cfg = Config.fromfile(config_path("mmseg", "fcn_r50-d8_quick_voc12aug.py"))
    assert cfg.model.backbone.type == "ResNet"  # the 7x7 stem, not ResNetV1c
    model = revert_sync_batchnorm(MODELS.build(cfg.model))
    assert model.backbone.conv1.kernel_size == (7, 7)
    samples = []
    for _ in range(2):
        s = SegDataSample(gt_sem_seg=PixelData(data=torch.randint(0, 21, (1, 64, 64))))
        s.set_metainfo({"img_shape": (64, 64), "ori_shape": (64, 64), "pad_shape": (64, 64)})
        samples.append(s)
    data = {"inputs": [torch.randint(0, 255, (3, 64, 64), dtype=torch.uint8) for _ in range(2)],
            "data_samples": samples}
    optim = torch.optim.SGD(model.parameters(), lr=0.01)
    from mmengine.optim import OptimWrapper

    log = model.train_step(data, OptimWrapper(optim))
    assert torch.isfinite(log["loss"]) and "aux.loss_ce" in log
    model.eval()
    out = model.test_step(data)
    assert out[0].pred_sem_seg.data.shape == (1, 64, 64)


def test_pycocotools_evaluates_a_toy_prediction():
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    gt = COCO()
    gt.dataset = {"images": [{"id": 1, "height": 50, "width": 50}], "categories": [{"id": 1, "name": "a"}],
                  "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [5, 5, 20, 20],
                                   "area": 400, "iscrowd": 0}]}
    gt.createIndex()
    for box, expected in (([5, 5, 20, 20], 1.0), ([30, 30, 15, 15], 0.0)):
        dt = gt.loadRes([{"image_id": 1, "category_id": 1, "bbox": box, "score": 0.9}])
        ev = COCOeval(gt, dt, "bbox")
        ev.evaluate(), ev.accumulate(), ev.summarize()
        assert ev.stats[0] == pytest.approx(expected)


def test_detectron2_native_ops_fail_clearly():
    from detectron2 import _C

    if not hasattr(_C, "NativeOpsMissing"):
        pytest.skip("a detectron2 with native ops is installed")
    with pytest.raises(_C.NativeOpsMissing, match="Build detectron2 from source"):
        _C.nms_rotated
