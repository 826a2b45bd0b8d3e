"""What both converter CLIs share: arguments, output checks, the report, atomic writes, exit 2.

Every refusal happens before anything is written: the output path is checked first (never the
input itself, never a folder, a writable parent), then the checkpoint is read and checked whole.
"""
import argparse
import os
import sys

from converters.sources import SOURCES, ConversionError, read_backbone
from converters.vit_layout import resize_pos_embed
from mococore.errors import UserError
from mococore.files import atomic_write

ARCHS = ["auto", "resnet50", "vit", "vit_small", "vit_base", "vit_large", "vit_huge"]


def parser(description, default_suffix):
    p = argparse.ArgumentParser(description=description)
    p.add_argument("checkpoint")
    p.add_argument("-o", "--output", help=f"output path (default: checkpoint name + {default_suffix})")
    p.add_argument("--source", default="auto", choices=["auto", *SOURCES], help="checkpoint layout")
    p.add_argument("--arch", default="auto", choices=ARCHS, help="expected backbone ('vit': any ViT size)")
    p.add_argument("--num-heads", type=int, default=None,
                   help="ViT head count, when the checkpoint does not record it (recorded in the output)")
    p.add_argument("--img-size", type=int, default=None, metavar="N",
                   help="ViT: put the position embedding on the grid of an N px input (MoCo v3's fixed sin-cos "
                        "written anew, a learned one interpolated); the transfer protocols build for 224. "
                        "Default: the checkpoint's own grid")
    p.add_argument("--force", action="store_true", help="overwrite an existing output")
    p.add_argument("--trust-pickle", action="store_true", help="allow pickles that run code when loaded (old files)")
    return p


def check_output(out, checkpoint, force, suffix=None):
    """Refuse an output that would clobber the input, a folder, or that cannot be written."""
    if not out:
        raise ConversionError("-o/--output: empty path; give a file name")
    if os.path.isdir(out) or out.endswith(os.sep):
        raise ConversionError(f"{out}: is a directory; give a file name for the output")
    if os.path.exists(out) and os.path.exists(checkpoint) and os.path.samefile(out, checkpoint):
        raise ConversionError(f"{out}: is the input checkpoint itself (same file, maybe through a link); "
                              "write the output elsewhere")
    if os.path.lexists(out) and not force:
        raise ConversionError(f"{out}: output exists; pass --force to overwrite")
    if suffix and not out.endswith(suffix):
        raise ConversionError(f"{out}: the output must end in {suffix} (the target framework reads the format by name)")
    parent = os.path.dirname(os.path.abspath(out))
    while not os.path.exists(parent):  # folders still to create: the first existing one decides
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        raise ConversionError(f"{out}: {parent} is a file, not a folder; choose another output path")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ConversionError(f"{out}: cannot write into {parent} (read-only or no permission)")


def settle_heads(report, given, path):
    """The head count: the checkpoint's, or --num-heads when it records none; a conflict stops."""
    if given is None:
        return
    if "vit" not in report:
        raise ConversionError(f"--num-heads: {path} holds a {report['arch']}, not a ViT; drop the flag")
    width, recorded = report["vit"]["width"], report["num_heads"]
    if given < 1 or width % given:
        raise ConversionError(f"--num-heads {given}: must divide the width {width} of {path}")
    if recorded is not None and recorded != given:
        raise ConversionError(f"--num-heads {given}: {path} says {recorded} ({report['num_heads_from']}); "
                              "drop the flag or fix the checkpoint")
    report["num_heads"], report["num_heads_from"] = given, "--num-heads"


def on_grid(sd, report, img_size, path):
    """--img-size: the ViT's pos_embed on that input's grid, said in the report and the output's meta."""
    if img_size is None:
        return sd
    if "vit" not in report:
        raise ConversionError(f"--img-size: {path} holds a {report['arch']}, not a ViT; drop the flag")
    if img_size < 1 or img_size % report["vit"]["patch"]:
        raise ConversionError(f"--img-size {img_size}: must be a multiple of the patch size {report['vit']['patch']}")
    sd, note = resize_pos_embed(sd, img_size)
    if note:
        report["notes"].append(note)
        report["pos_embed"], report["vit"]["grid"] = note, img_size // report["vit"]["patch"]
    return sd


def describe(arch, report):
    if "vit" not in report:
        return arch
    v = report["vit"]
    heads = (f"num_heads {report['num_heads']} from {report['num_heads_from']}" if report["num_heads"]
             else f"num_heads {report['num_heads_from']}")
    return f"{arch} ({v['depth']} blocks x {v['width']}, patch {v['patch']}, {v['grid']}x{v['grid']} grid, {heads})"


def run(argv, description, suffix, convert, save, required_suffix=None, hint=None):
    """convert(arch, state_dict, path) -> converted; save(converted, tmp_path, meta);
    hint(report) -> a line saying how the target framework must build the backbone."""
    args = parser(description, suffix).parse_args(argv)
    out = os.path.splitext(args.checkpoint)[0] + suffix if args.output is None else args.output
    try:
        check_output(out, args.checkpoint, args.force, required_suffix)
        arch, sd, report = read_backbone(args.checkpoint, args.source, args.trust_pickle)
        wanted = args.arch in ("auto", arch) or (args.arch == "vit" and arch.startswith("vit"))
        if not wanted:
            raise ConversionError(f"{args.checkpoint}: holds a {arch} backbone, but --arch {args.arch} was asked for")
        settle_heads(report, args.num_heads, args.checkpoint)
        sd = on_grid(sd, report, args.img_size, args.checkpoint)
        converted = convert(arch, sd, args.checkpoint)
        meta = {"arch": arch, "source": report["source"], "num_heads": report.get("num_heads"),
                **({"pos_embed": report["pos_embed"]} if "pos_embed" in report else {})}
        atomic_write(out, lambda tmp: save(converted, tmp, meta))
    except UserError as e:  # ConversionError, or an output that cannot be written
        print(f"error: {e}", file=sys.stderr)
        return 2
    print_report(arch, report, sd, converted, hint)
    print(f"wrote {out}")
    return 0


def print_report(arch, report, sd, converted, hint):
    how = "detected" if report["auto_detected"] else "given"
    n_params = sum(int(v.numel()) for v in sd.values())
    print(f"source {report['source']} ({how}), {describe(arch, report)}: {len(converted)} tensors, "
          f"{n_params / 1e6:.2f}M parameters ({'/'.join(report['dtypes'])}) converted; {report['dropped']} "
          f"tensors dropped by rule ({', '.join(report['dropped_prefixes']) or 'none'})")
    for note in report["notes"] + ([hint(report)] if hint else []):
        if note:
            print(f"  {note}")
