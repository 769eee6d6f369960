"""Data sets, in memory as uint8 tensors or image folders streamed from disk, behind one contract
(:class:`ImageSource`), and whole-batch augmentation on tensors.

    load_dataset(name="fashion-mnist", data_dir=None, ..., mode="auto", workers=None) -> ImageData
    ImageData.train / .val / .test: ImageSource (len, labels, in_chans, read(idx), batches(plan, aug), subset(idx))
    read_image(path, channels=None, size=None) -> (C, H, W) uint8, as a viewer shows the file
    Augment(pad, flip, erase); augment(x, aug, gen); to_input(x, size, mean, std)
    tta_views(x, "flip" | "10crop", pad): the extra views of multi-view testing
    per_class_indices(labels, n, seed): a seeded subset of at most n samples per class
    stratified_parts(labels, fractions, seed); balanced_order(labels, k, seed, epoch): splits, balanced sampling
"""
from .augment import (Augment, augment, batch_slices, epoch_order, num_steps, per_class_indices, random_crop,
                      random_erase, random_flip, to_input, tta_views, TTA_VIEWS, check_tta)
from .datasets import DATA_MODES, DATASETS, ImageData, channel_stats, load_dataset
from .readers import (IMAGE_SUFFIXES, fit, list_image_folder, open_image, read_cifar_batch, read_idx, read_image,
                      read_image_set, read_images)
from .source import ImageSource, TensorSource
from .splits import DEFAULT_SPLIT, balanced_order, stratified_parts
from .stream import StreamSource

__all__ = ["DATASETS", "DATA_MODES", "ImageSource", "TensorSource", "StreamSource", "ImageData", "load_dataset", "channel_stats", "Augment", "augment", "random_crop",
           "random_erase", "random_flip", "to_input", "tta_views", "TTA_VIEWS", "check_tta", "epoch_order",
           "batch_slices", "num_steps", "per_class_indices", "read_idx", "read_cifar_batch", "read_image",
           "read_images", "read_image_set", "open_image", "DEFAULT_SPLIT", "stratified_parts",
           "balanced_order", "fit", "list_image_folder", "IMAGE_SUFFIXES"]
