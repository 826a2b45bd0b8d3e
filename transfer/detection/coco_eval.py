"""detectron2's COCOEvaluator with faster-coco-eval's C++ COCOeval run on the raw results.

Everything detectron2's evaluator does stays (process(), the gathering across ranks, the
category-id mapping, `instances_predictions.pth` and `coco_instances_results.json` in
output_dir, the results dict with its per-category AP); only the COCO API call changes.
detectron2 hands its results to pycocotools' `loadRes` (and deep-copies all of them for the
mask task) before its COCOeval; here faster-coco-eval's `loadRes` takes the result dicts as
they are (for the mask task without their box, as detectron2 evaluates it, by taking the boxes
out and putting them back rather than copying 500k dicts), on a faster-coco-eval index of the
ground truth detectron2 already loaded (no second load, no copy), with Python's cyclic garbage
collector paused meanwhile (its passes over millions of new acyclic objects are a large share of the
mask evaluation). The 12 summary numbers and the per-category AP are pycocotools' up to float
summation order (1e-14; tests/test_coco_eval.py against detectron2's
COCOEvaluator(use_fast_impl=False), to 1e-12 and 1e-9).

tools/bench_eval.py times it at COCO val size against faster-coco-eval called directly, pycocotools
and detectron2's native evaluator, wall and CPU seconds and peak memory (the figures: README, Benchmarks).

detectron2's own fast evaluator (COCOeval_opt, detectron2's COCOEvaluator with use_fast_impl) is
native code: the registry's detectron2 lacks it, tools/install_detectron2.py's upstream build has
it, and the bench times it where it is present. It gives the same numbers (1e-14) but is slower
than faster-coco-eval (it keeps pycocotools' loadRes, the Python _prepare and the deep copy), so
this evaluator uses faster-coco-eval either way.

    FastCOCOEvaluator(dataset_name, tasks=None, distributed=True, output_dir=None,
                      max_dets_per_image=None, kpt_oks_sigmas=())

takes detectron2's COCOEvaluator arguments (use_fast_impl is ignored); `evaluator.coco_stats`
holds each task's 12 numbers. Keypoints, and a max_dets_per_image other than 100, go through
detectron2's own pycocotools path unchanged.
"""
import contextlib
import gc
import inspect
import io
import itertools
import json
import os

from detectron2.evaluation import COCOEvaluator
from detectron2.evaluation import coco_evaluation
from detectron2.utils.file_io import PathManager
from faster_coco_eval import COCO as FasterCOCO
from faster_coco_eval import COCOeval_faster

JSON_CHUNK = 10_000  # results serialised at once when writing coco_instances_results.json


class FastCOCOEvaluator(COCOEvaluator):
    def __init__(self, dataset_name, tasks=None, distributed=True, output_dir=None, **kwargs):
        kwargs.pop("use_fast_impl", None)
        super().__init__(dataset_name, tasks, distributed, output_dir, use_fast_impl=False, **kwargs)
        self._faster_gt = None
        self.coco_stats = {}  # task -> the 12 (keypoints: 10) summary numbers of the last evaluate()

    def _eval_predictions(self, predictions, img_ids=None):
        """detectron2's _eval_predictions, with faster-coco-eval in place of pycocotools."""
        self._logger.info("Preparing results for COCO format ...")
        self.coco_stats = {}
        coco_results = list(itertools.chain(*[x["instances"] for x in predictions]))
        tasks = self._tasks or self._tasks_from_predictions(coco_results)

        # unmap the category ids for COCO
        if hasattr(self._metadata, "thing_dataset_id_to_contiguous_id"):
            dataset_id_to_contiguous_id = self._metadata.thing_dataset_id_to_contiguous_id
            all_contiguous_ids = list(dataset_id_to_contiguous_id.values())
            num_classes = len(all_contiguous_ids)
            assert min(all_contiguous_ids) == 0 and max(all_contiguous_ids) == num_classes - 1
            reverse_id_mapping = {v: k for k, v in dataset_id_to_contiguous_id.items()}
            try:
                for result in coco_results:
                    result["category_id"] = reverse_id_mapping[result["category_id"]]
            except KeyError as e:
                raise AssertionError(
                    f"A prediction has class={e.args[0]}, "
                    f"but the dataset only has {num_classes} classes and "
                    f"predicted class id should be in [0, {num_classes - 1}].") from None

        if self._output_dir:
            file_path = os.path.join(self._output_dir, "coco_instances_results.json")
            self._logger.info("Saving results to {}".format(file_path))
            with PathManager.open(file_path, "w") as f:
                write_json_list(f, coco_results)

        if not self._do_evaluation:
            self._logger.info("Annotations are not available for evaluation.")
            return

        self._logger.info("Evaluating predictions with faster-coco-eval ...")
        for task in sorted(tasks):
            assert task in {"bbox", "segm", "keypoints"}, f"Got unknown task: {task}!"
            coco_eval = self._evaluate_task(coco_results, task, img_ids) if len(coco_results) > 0 else None
            if coco_eval is not None:
                self.coco_stats[task] = [float(s) for s in coco_eval.stats]
            res = self._derive_coco_results(coco_eval, task, class_names=self._metadata.get("thing_classes"))
            self._results[task] = res

    def _evaluate_task(self, coco_results, task, img_ids):
        if task == "keypoints" or self._max_dets_per_image[2] != 100:
            return detectron2_reference(self, coco_results, task, img_ids)
        if self._faster_gt is None:  # the same ground-truth dicts, indexed by faster-coco-eval
            with contextlib.redirect_stdout(io.StringIO()):
                self._faster_gt = FasterCOCO(self._coco_api.dataset)
        gt = self._faster_gt
        with without_boxes(coco_results, task == "segm"), gc_paused():
            dt = gt.loadRes(coco_results)
            coco_eval = COCOeval_faster(gt, dt, task, print_function=print)
            coco_eval.params.maxDets = self._max_dets_per_image
            if img_ids is not None:
                coco_eval.params.imgIds = img_ids
            coco_eval.evaluate()
            coco_eval.accumulate()
            coco_eval.summarize()
        return coco_eval


@contextlib.contextmanager
def gc_paused():
    """Python's cyclic garbage collector off inside (as it was before, after): faster-coco-eval's
    loadRes and index create millions of objects without cycles, and the collector's passes over
    them (and over the results already held) are a large share of the mask evaluation at COCO size."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@contextlib.contextmanager
def without_boxes(results, active=True):
    """The results without their "bbox" while inside (for mask AP, as detectron2 evaluates it: with
    a box, COCO's loadRes takes the box area as the object's area), the boxes put back after."""
    if not active:
        yield
        return
    boxes = [r.pop("bbox", None) for r in results]
    try:
        yield
    finally:
        for r, b in zip(results, boxes):
            if b is None:
                r.pop("bbox", None)
            else:
                r["bbox"] = b


def detectron2_reference(evaluator, coco_results, task, img_ids):
    """detectron2's pycocotools path (`_evaluate_predictions_on_coco`), for what this module does not
    take over: keypoints, and max_dets_per_image other than 100."""
    fn = coco_evaluation._evaluate_predictions_on_coco
    official = ({"use_fast_impl": False} if "use_fast_impl" in inspect.signature(fn).parameters
                else {"cocoeval_fn": coco_evaluation.COCOeval})
    return fn(evaluator._coco_api, coco_results, task, kpt_oks_sigmas=evaluator._kpt_oks_sigmas, img_ids=img_ids,
              max_dets_per_image=evaluator._max_dets_per_image, **official)


def write_json_list(f, items):
    """f.write(json.dumps(items)), the same text, a chunk of items at a time (not one string of them all)."""
    f.write("[")
    for s in range(0, len(items), JSON_CHUNK):
        if s:
            f.write(", ")
        f.write(json.dumps(items[s:s + JSON_CHUNK])[1:-1])
    f.write("]")
    f.flush()
