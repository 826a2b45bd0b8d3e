"""detectron2 training through our train_net: a killed run resumes from its last checkpoint."""
import json

from tests.conftest import config_path
from transfer.detection import train_net


def run(out, demo_root, iters):
    args = ["--config-file", config_path("detectron2", "coco_R_50_FPN_quick.yaml"), "--data-root", demo_root,
            "--resume", "OUTPUT_DIR", str(out), "SOLVER.MAX_ITER", str(iters), "SOLVER.CHECKPOINT_PERIOD", "1",
            "SOLVER.STEPS", "()", "TEST.PRECISE_BN.ENABLED", "False"]
    return train_net.main(train_net.build_parser().parse_args(args))


def test_resume_continues_from_the_last_checkpoint(tmp_path, demo_root):
    out = tmp_path / "coco"
    run(out, demo_root, 2)
    assert (out / "last_checkpoint").read_text().strip() == "model_final.pth"
    fp = json.load(open(out / "fingerprint.json"))
    assert fp["task"] == "coco" and fp["norm"] == "BN" and "max_iter: 2 (protocol 90000)" in fp["deviations"]
    results = run(out, demo_root, 3)  # a longer schedule in the same folder: iterations 2..3 only
    trained = [json.loads(line)["iteration"] for line in open(out / "metrics.json") if "total_loss" in line]
    assert trained == [1, 2] and "Starting training from iteration 2" in (out / "log.txt").read_text()
    assert "bbox" in results  # (no segm entry: detectron2 omits it when no mask was predicted)
    assert json.load(open(out / "final_metrics.json"))["bbox"].keys() >= {"AP", "AP50", "AP75"}
