"""The class lists of the real data sets, shared by generation, validation and registration."""

# PASCAL VOC's 20 classes, in the order detectron2 and mmseg use.
VOC_CLASSES = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
    "train", "tvmonitor",
)
