"""Which files are images, and how an ImageFolder (<root>/<class>/<image>) is listed: one definition for
the data check, pretraining, kNN, the SVMs and the mmpretrain runners, so that every tool accepts the same
folders. The extensions are mmpretrain's CustomDataset default (mmpretrain/datasets/custom.py, matched
case-insensitively), the narrowest list of the frameworks that read these folders: torchvision's
ImageFolder takes these and more (.webp, .tiff), which mmpretrain would find empty."""
import os

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif")


def is_image(name):
    return name.lower().endswith(IMAGE_EXTS)


def class_folders(root):
    """Sorted names of the class folders (torchvision's find_classes and mmpretrain's order)."""
    return sorted(e.name for e in os.scandir(root) if e.is_dir())


def image_folder(root):
    """(samples, classes, empty): [(path, class index)] in torchvision's make_dataset order (classes sorted,
    each class folder walked recursively, links followed, names sorted), the class names, and the class
    folders that hold no image."""
    classes, samples, empty = class_folders(root), [], []
    for i, c in enumerate(classes):
        found = [os.path.join(d, f) for d, _, files in sorted(os.walk(os.path.join(root, c), followlinks=True))
                 for f in sorted(files) if is_image(f)]
        samples += [(p, i) for p in found]
        empty += [] if found else [c]
    return samples, classes, empty
