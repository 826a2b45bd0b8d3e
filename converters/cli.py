"""What both converter CLIs share: arguments, the report, atomic writes, exit code 2 on refusal."""
import argparse
import os
import sys
import tempfile

from converters.sources import SOURCES, ConversionError, read_backbone


def parser(description, default_suffix):
    p = argparse.ArgumentParser(description=description)
    p.add_argument("checkpoint")
    p.add_argument("-o", "--output", help=f"output path (default: checkpoint name + {default_suffix})")
    p.add_argument("--source", default="auto", choices=["auto", *SOURCES], help="checkpoint layout")
    p.add_argument("--arch", default="auto", choices=["auto", "resnet50", "vit"], help="expected backbone")
    p.add_argument("--force", action="store_true", help="overwrite an existing output")
    p.add_argument("--trust-pickle", action="store_true", help="allow pickles that run code when loaded (old files)")
    return p


def atomic_write(path, write):
    """write(tmp_path) then rename: a killed run never leaves a half-written output."""
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=d, prefix=".tmp-", suffix=os.path.basename(path))
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def run(argv, description, suffix, convert, save):
    """convert(arch, state_dict, path) -> (converted, notes); save(converted, tmp_path)."""
    args = parser(description, suffix).parse_args(argv)
    out = args.output or os.path.splitext(args.checkpoint)[0] + suffix
    try:
        if os.path.exists(out) and not args.force:
            raise ConversionError(f"{out}: output exists; pass --force to overwrite")
        arch, sd, report = read_backbone(args.checkpoint, args.source, args.trust_pickle)
        if args.arch != "auto" and arch != args.arch:
            raise ConversionError(f"{args.checkpoint}: holds a {arch} backbone, but --arch {args.arch} was asked for")
        converted = convert(arch, sd, args.checkpoint)
        atomic_write(out, lambda tmp: save(converted, tmp))
    except ConversionError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    how = "detected" if report["auto_detected"] else "given"
    n_params = sum(int(v.numel()) for v in sd.values())
    print(f"source {report['source']} ({how}), {arch}: {len(converted)} tensors, {n_params / 1e6:.2f}M parameters "
          f"converted; {report['dropped']} tensors dropped by rule ({', '.join(report['dropped_prefixes']) or 'none'})")
    print(f"wrote {out}")
    return 0
