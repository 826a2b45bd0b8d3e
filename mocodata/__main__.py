"""The data command line: write the built-in sets, or check a data root before training.

    python -m mocodata make-demo OUT/ [--seed 0] [--scale 1.0]
    python -m mocodata check ROOT [--task voc|coco|seg|imagenet|all]
    python -m mocodata inat18-meta ROOT    # ROOT/iNaturalist2018/meta/{train,val}.txt from its JSON files
"""
import argparse
import sys

from mocodata import inat, validate
from mocodata.builtin import DemoSizes, default_demo_root, make_demo


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m mocodata", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    mk = sub.add_parser("make-demo", help="write the built-in data sets")
    mk.add_argument("out", nargs="?", default=default_demo_root())
    mk.add_argument("--seed", type=int, default=0, help="fixes every pixel (0 or more)")
    mk.add_argument("--scale", type=float, default=1.0, help="multiply every split's size (above 0, at most 100)")
    ck = sub.add_parser("check", help="validate a data root before training")
    ck.add_argument("root")
    ck.add_argument("--task", choices=[*validate.CHECKS, "all"], default="all")
    im = sub.add_parser("inat18-meta", help="write iNaturalist 2018's image lists (meta/{train,val}.txt)")
    im.add_argument("root", help="the data root holding iNaturalist2018/")
    args = parser.parse_args(argv)
    try:
        if args.cmd == "make-demo":
            if not 0 < args.scale <= 100 or args.seed < 0:  # (NaN fails the first test too)
                raise validate.DataError("--scale/--seed", f"got {args.scale}/{args.seed}; scale in (0, 100], seed >= 0")
            out = make_demo(args.out, DemoSizes(seed=args.seed).scaled(args.scale))
            print(f"built-in data sets ready in {out}")
            return 0
        if args.cmd == "inat18-meta":
            counts = inat.write_meta(args.root)
            print(f"wrote {validate.INAT18}/meta/train.txt ({counts['train']} images) and meta/val.txt "
                  f"({counts['val']}) under {args.root}")
            return 0
        for task in (list(validate.CHECKS) if args.task == "all" else [args.task]):
            n = validate.check_task(task, args.root)
            print(f"{task}: {n} images ok")
    except validate.DataError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
