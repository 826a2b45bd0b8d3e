"""The one driver of the MMEngine runners (transfer/mmengine_run.py): both runners, MMSeg's and mmpretrain's,
merge the command line through it, and its load-check hook is the one both register."""
import logging
import types

import pytest
import torch
import torch.nn as nn

from tests.badinput import refuses
from tests.conftest import config_path
from transfer import mmengine_run
from transfer.loadcheck import WeightsNotLoaded

SEG = config_path("mmseg", "fcn_r50-d8_quick_voc12aug.py")
LINEAR = config_path("mmpretrain", "linear_mocov2_r50_quick.py")


def effective(framework, argv):
    """The effective config as each runner builds it from its own command line."""
    if framework == "mmseg":
        from transfer.segmentation import train

        return train.run_cfg(train.parser().parse_args(argv))
    from transfer.classification import linear, mmrun

    return mmrun.run_cfg(mmrun.parser("linear").parse_args(argv), ("linear",), linear.RECIPES)[0]


def merged(cfg):
    return dict(work_dir=cfg.work_dir, launcher=cfg.launcher, randomness=cfg.randomness, resume=cfg.resume,
                dist_cfg=cfg.env_cfg.dist_cfg)


@pytest.mark.parametrize("resumed", [False, True])
def test_both_runners_merge_the_command_line_through_the_driver(demo_root, tmp_path, resumed):
    """Work dir, launcher, seed, resume and backend are the driver's merge_args, the same for both frameworks:
    resume only where the work dir holds the run's own checkpoint (MMEngine's last_checkpoint file), gloo
    where there is no CUDA (the configs name nccl)."""
    work = tmp_path / "run"
    if resumed:
        work.mkdir()
        (work / "last_checkpoint").write_text(str(work / "iter_2.pth"))
    facts = {}
    for framework, config in (("mmseg", SEG), ("mmpretrain", LINEAR)):
        argv = ["--config", config, "--data-root", demo_root, "--work-dir", str(work), "--seed", "7"]
        cfg = effective(framework, argv)
        facts[framework] = merged(cfg)
        args = types.SimpleNamespace(work_dir=str(work), launcher="none", seed=7)
        assert merged(mmengine_run.merge_args(mmengine_run.build_cfg(config), args)) == facts[framework]
    assert facts["mmseg"] == facts["mmpretrain"]
    assert facts["mmseg"]["resume"] is resumed and facts["mmseg"]["randomness"] == {"seed": 7}
    assert facts["mmseg"]["work_dir"] == str(work) and facts["mmseg"]["launcher"] == "none"
    assert (facts["mmseg"]["dist_cfg"] == {"backend": "gloo"}) is (not torch.cuda.is_available())


def test_both_runners_refuse_a_negative_seed_before_anything_is_written(demo_root, tmp_path, capsys):
    """The driver's check, so the segmentation runner refuses it too (it used to reach MMEngine's
    set_random_seed, whose numpy seed raises after the work dir was made)."""
    from transfer.classification import linear
    from transfer.runner import entry
    from transfer.segmentation import train

    for main, config in ((lambda a: entry(train.main, a), SEG), (lambda a: entry(linear.main, a), LINEAR)):
        argv = ["--config", config, "--data-root", demo_root, "--work-dir", str(tmp_path / "run"), "--seed", "-1"]
        refuses(main, argv, "--seed -1", capsys, watch=[str(tmp_path)])
        assert not (tmp_path / "run").exists()


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4))


def runner_at(model, it, caplog):
    """What the hook reads of MMEngine's Runner: its model, iteration and logger."""
    caplog.set_level(logging.INFO, logger="mmengine_run_test")
    return types.SimpleNamespace(model=model, iter=it, logger=logging.getLogger("mmengine_run_test"))


def test_the_load_check_reads_the_file_compares_every_tensor_and_skips_a_resumed_run(tmp_path, caplog):
    model = Model()
    path = str(tmp_path / "backbone.pth")
    torch.save({"state_dict": model.backbone.state_dict()}, path)  # the converters' {'state_dict': ...} file
    mmengine_run.BackboneCheck(path).before_train(runner_at(model, 0, caplog))
    assert f"backbone: all 7 tensors loaded from {path}" in caplog.text  # conv w, b; BN w, b, mean, var, count
    with torch.no_grad():
        model.backbone[1].running_mean += 1  # a tensor the framework did not fill
    with pytest.raises(WeightsNotLoaded, match=r"backbone.pth: the backbone did not load: .*1 differ.*1.running_mean"):
        mmengine_run.BackboneCheck(path).before_train(runner_at(model, 0, caplog))
    mmengine_run.BackboneCheck(path, resized=["1.running_mean"]).before_train(runner_at(model, 0, caplog))
    mmengine_run.BackboneCheck(path).before_train(runner_at(model, 5, caplog))  # resumed: trained since


def test_a_frozen_backbone_that_changed_stops_the_run(caplog):
    model = Model()
    frozen, trained = mmengine_run.BackboneCheck(None, frozen=True), mmengine_run.BackboneCheck(None)
    for hook in (frozen, trained):
        hook.before_train(runner_at(model, 0, caplog))
    assert trained.start is None  # nothing kept of a backbone that trains
    frozen.after_train(runner_at(model, 2, caplog))
    assert "backbone: all 7 tensors unchanged by training" in caplog.text
    with torch.no_grad():
        model.backbone[1].running_var *= 2  # train-mode BN moves the running statistics
    trained.after_train(runner_at(model, 2, caplog))
    with pytest.raises(RuntimeError, match=r"frozen backbone changed during training: 1 tensors .*1.running_var"):
        frozen.after_train(runner_at(model, 2, caplog))
