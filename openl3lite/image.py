"""Image validation and preprocessing to the network's 224x224 input.

Two scalings, chosen by the model's metadata (:data:`openl3lite.weights.IMAGE_SCALINGS`):

``openl3``
    OpenL3 0.4.2 exactly, for OpenL3's weights: exactly-224 images are used as they are; if the
    shorter side is over 256 the image is rescaled (bilinear, no anti-aliasing) so it is 256, then
    the centre 224x224 is cropped; unsigned integers map to [-1, 1] only when no rescale happened
    (a rescaled batch is float in [0, 1]); finally a batch whose magnitude exceeds 1 is divided by
    its maximum magnitude.
``symmetric``
    One consistent rule, used by our models: pixels to float in [0, 1], shorter side resized to 256
    (anti-aliased; upscaled if smaller), centre 224x224 crop, mapped to [-1, 1].
"""

import numpy as np

from .errors import OpenL3liteError, check_input_file, short_reason, warn

IMAGE_SIZE = 224
RESIZE_SHORT_SIDE = 256


def as_image_batch(image, source="image", warn_all_zero=True):
    """Validate an image or a batch and convert it to (N, H, W, 3).

    Grayscale (H, W) or (H, W, 1) is replicated to RGB, and an alpha channel is dropped (from
    grey + alpha, C = 2, as image files with an alpha channel read, or RGBA, C = 4).

    Parameters
    ----------
    image : np.ndarray, shape (H, W), (H, W, C) or (N, H, W, C), C in {1, 2, 3, 4}
    source : str
        Name used in error messages.
    warn_all_zero : bool
        Warn when every pixel is zero (off for the batches of a stream, which warns once
        for the whole of it).

    Returns
    -------
    np.ndarray, shape (N, H, W, 3), the input's dtype

    Raises
    ------
    OpenL3liteError
        Wrong dimensions, unsupported channel count, non-numeric or non-finite values, images
        smaller than 224 px on a side, or an empty batch.
    """
    image = np.asarray(image)
    if image.dtype == object or not (np.issubdtype(image.dtype, np.number) or image.dtype == bool):
        raise OpenL3liteError(f"{source}: image must be a numeric array, got dtype {image.dtype}")
    if image.dtype == bool:
        image = image.astype(np.uint8) * 255
    if image.ndim == 2:
        image = image[..., np.newaxis]
    if image.ndim == 3:
        image = image[np.newaxis]
    if image.ndim != 4:
        raise OpenL3liteError(
            f"{source}: image must have shape (H, W), (H, W, C) or (N, H, W, C); got {image.shape}")
    if image.shape[0] == 0:
        raise OpenL3liteError(f"{source}: got an empty batch of images")
    channels = image.shape[-1]
    if channels in (1, 2):
        image = np.repeat(image[..., :1], 3, axis=-1)
    elif channels == 4:
        image = image[..., :3]
    elif channels != 3:
        raise OpenL3liteError(
            f"{source}: need images with 1 (grey), 2 (grey + alpha), 3 (RGB) or 4 (RGBA) "
            f"channels; got {channels}")
    if np.issubdtype(image.dtype, np.floating) and not np.all(np.isfinite(image)):
        raise OpenL3liteError(f"{source}: image contains NaN or infinite values")
    height, width = image.shape[1:3]
    if min(height, width) < IMAGE_SIZE:
        raise OpenL3liteError(
            f"{source}: image(s) must be at least {IMAGE_SIZE}x{IMAGE_SIZE} px; got {height}x{width} px")
    if warn_all_zero and not np.any(image):
        warn(f"{source}: provided image is all zeros")
    return image


def _centre_crop(image):
    """Centre 224x224 crop of (H, W, C): starts at ``dim // 2 - 112`` on each axis."""
    top = image.shape[0] // 2 - IMAGE_SIZE // 2
    left = image.shape[1] // 2 - IMAGE_SIZE // 2
    return image[top : top + IMAGE_SIZE, left : left + IMAGE_SIZE]


def preprocess_openl3(batch, peak=None):
    """OpenL3 0.4.2's image preprocessing, quirks included.

    Parameters
    ----------
    batch : np.ndarray, shape (N, H, W, 3)
        As returned by :func:`as_image_batch`.
    peak : float, optional
        What OpenL3 divides the scaled batch by when it exceeds 1: the largest magnitude of
        the array it was given (:func:`openl3_peak`). None takes this batch's own; a stream
        cut into batches passes the whole stream's.

    Returns
    -------
    np.ndarray, float32, shape (N, 224, 224, 3)
    """
    batch = _openl3_before_peak(batch)
    if peak is None:
        peak = np.abs(batch).max()
    if peak > 1:
        batch = batch / np.float32(peak)
    return batch.astype(np.float32)


def openl3_peak(batch):
    """The magnitude :func:`preprocess_openl3` divides ``batch`` by when it exceeds 1: frames
    of 224 to 256 px keep their 0-255 values, so it is their brightest pixel.

    Returns
    -------
    float
    """
    return float(np.abs(_openl3_before_peak(batch)).max())


def _openl3_before_peak(batch):
    """OpenL3's rescaling, centre crop and conversion to float32, before its division by the
    batch's peak."""
    import skimage
    import skimage.transform

    if batch.shape[1:3] != (IMAGE_SIZE, IMAGE_SIZE):
        out = np.zeros((len(batch), IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.float64)
        for i, image in enumerate(batch):
            short = min(image.shape[:2])
            if short > RESIZE_SHORT_SIDE:
                image = skimage.transform.rescale(
                    image, RESIZE_SHORT_SIDE / short, order=1, mode="constant", cval=0, clip=True,
                    preserve_range=False, anti_aliasing=False, channel_axis=-1)
            out[i] = _centre_crop(image)
        batch = out
    if np.issubdtype(batch.dtype, np.unsignedinteger):
        batch = 2.0 * batch.astype(np.float64) / np.iinfo(batch.dtype).max - 1.0
    else:
        batch = skimage.img_as_float32(batch)
    return np.asarray(batch, dtype=np.float32)


def to_unit_float(image):
    """Pixels to float64 in [0, 1]: unsigned and signed integers by their dtype's range,
    floats taken as already in [0, 1] (values above 1 are divided by the image's maximum).

    Parameters
    ----------
    image : np.ndarray, shape (H, W, 3)

    Returns
    -------
    np.ndarray, float64
    """
    if np.issubdtype(image.dtype, np.integer):
        info = np.iinfo(image.dtype)
        return (image.astype(np.float64) - info.min) / (info.max - info.min)
    image = image.astype(np.float64)
    peak = np.abs(image).max()
    return image / peak if peak > 1 else image


def preprocess_symmetric(batch):
    """Our consistent scaling: [0, 1] floats, shorter side to 256, centre crop, then [-1, 1].

    Parameters
    ----------
    batch : np.ndarray, shape (N, H, W, 3)

    Returns
    -------
    np.ndarray, float32, shape (N, 224, 224, 3), values in [-1, 1]
    """
    import skimage.transform

    out = np.empty((len(batch), IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.float32)
    for i, image in enumerate(batch):
        image = to_unit_float(image)
        short = min(image.shape[:2])
        if short != RESIZE_SHORT_SIDE:
            scale = RESIZE_SHORT_SIDE / short
            shape = (max(RESIZE_SHORT_SIDE, round(image.shape[0] * scale)),
                     max(RESIZE_SHORT_SIDE, round(image.shape[1] * scale)), 3)
            image = skimage.transform.resize(image, shape, order=1, anti_aliasing=scale < 1)
        out[i] = 2.0 * np.clip(_centre_crop(image), 0.0, 1.0) - 1.0
    return out


def preprocess_images(batch, scaling, openl3_peak=None):
    """Preprocess a validated batch with the given scaling rule.

    Parameters
    ----------
    batch : np.ndarray, shape (N, H, W, 3)
    scaling : str
        ``openl3`` or ``symmetric``.
    openl3_peak : float, optional
        For ``openl3``: see :func:`preprocess_openl3`'s ``peak``.

    Returns
    -------
    np.ndarray, float32, shape (N, 224, 224, 3)
    """
    if scaling == "openl3":
        return preprocess_openl3(batch, openl3_peak)
    return preprocess_symmetric(batch)


def read_image(path):
    """Read an image file as an array.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    np.ndarray, uint8 (or the file's integer type), shape (H, W) or (H, W, C)

    Raises
    ------
    OpenL3liteError
        If the file is missing or not a readable image.
    """
    import skimage.io

    path = check_input_file(path)
    try:
        return np.asarray(skimage.io.imread(path))
    except Exception as exc:
        raise OpenL3liteError(f"{path}: not a readable image ({short_reason(exc)})") from None
