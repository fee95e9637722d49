"""COCO-format instance segmentation (and keypoint) datasets.

``CocoDataset(image_dir, annotation_json)`` reads any dataset in the COCO
format through pycocotools: polygon and RLE (compressed or uncompressed)
segmentations, ``iscrowd`` regions, keypoints and images without annotations.

Item format (what the model's training mode takes)::

    image:  Tensor[3, H, W] float32 in [0, 1], RGB
    target: dict(
        boxes      Tensor[K, 4] float32, XYXY, absolute pixels
        labels     Tensor[K] int64 in 1..num_classes-1 (0 is background)
        masks      Tensor[K, H, W] uint8 (0/1)
        area       Tensor[K] float32, mask area in pixels
        iscrowd    Tensor[K] int64, all zeros (crowd regions are not trained on)
        crowd_boxes Tensor[C, 4] float32, XYXY boxes of the crowd regions
        keypoints  Tensor[K, P, 3] float32 (x, y, visibility 0/1/2), when enabled
        image_id   int (the COCO image id)
        orig_size  (H, W) of the decoded image, before transforms
        size       (H, W) after transforms
    )

Crowd annotations never reach the training target, but evaluation uses the
original pycocotools ``COCO`` object (``dataset.coco``), in which they are
present, so COCOeval ignores detections matched to crowd regions as usual.

Categories: COCO category ids (any integers) are mapped to contiguous labels
1..K in increasing id order: ``dataset.category_id_to_label`` and
``dataset.label_to_category_id``; ``dataset.class_names[label]`` is the name
(index 0 is ``"__background__"``), so ``num_classes = len(class_names)``.

Errors: a malformed annotation or image entry (bad bbox, negative box size,
wrong segmentation type, RLE whose runs do not cover exactly ``h*w`` pixels or
a compressed RLE string that does not parse, unknown category, duplicate
annotation or image ids, non-integer image height/width) raises
:class:`InvalidAnnotationError` when the dataset is built, naming the json
file and the annotation (or image) id; a missing image file raises
:class:`UnreadableImageError` when the dataset is built, and an image that
cannot be decoded (truncated, empty, not an image) when the item is loaded,
naming the file and the image id. Both are :class:`DatasetError` errors. With
``skip_invalid=True`` they are skipped instead and counted in
``dataset.skipped`` (a Counter; keys ``invalid_annotations``,
``invalid_images``, ``duplicate_image_ids``, ``missing_images``,
``unreadable_images``). Degenerate geometry (polygons with fewer than three
points or no area, zero-area boxes, masks that rasterise to no pixel) is never
an error: such instances are dropped and counted (``degenerate_*`` keys).
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import warnings
from collections import Counter
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from PIL import Image, ImageOps
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

__all__ = [
    "CocoDataset",
    "DatasetError",
    "InvalidAnnotationError",
    "UnreadableImageError",
    "load_image",
    "rle_string_counts",
    "decode_segmentation",
    "flip_map_from_names",
]


class DatasetError(Exception):
    """Base class of the dataset errors."""


class InvalidAnnotationError(DatasetError, ValueError):
    """A malformed annotation (names the json file and the annotation id)."""


class UnreadableImageError(DatasetError, OSError):
    """An image file that is missing or cannot be decoded (names the file)."""


def load_image(path: str) -> Image.Image:
    """Decode ``path`` with Pillow, apply the EXIF orientation and convert to RGB.

    Grayscale (L, I;16, 1), palette (P), RGBA/LA (alpha dropped: composited on
    black is *not* done, the colour channels are kept as stored) and CMYK all
    become 3-channel RGB. Raises :class:`UnreadableImageError` naming the file.
    """
    try:
        with Image.open(path) as im:
            im = ImageOps.exif_transpose(im)
            im.load()
            if im.mode in ("I;16", "I;16B", "I;16L", "I"):
                arr = np.asarray(im, dtype=np.float64)
                top = 65535.0 if arr.max(initial=0) > 255 else 255.0
                im = Image.fromarray((arr * (255.0 / top)).clip(0, 255).astype(np.uint8), "L")
            elif im.mode == "F":
                arr = np.asarray(im, dtype=np.float64)
                im = Image.fromarray((arr.clip(0, 1) * 255).astype(np.uint8), "L")
            if im.mode == "P":
                im = im.convert("RGBA")
            if im.mode != "RGB":
                im = im.convert("RGB")
            return im
    except FileNotFoundError as e:
        raise UnreadableImageError(f"image file not found: {path}") from e
    except UnreadableImageError:
        raise
    except Exception as e:  # PIL raises many types (UnidentifiedImageError, OSError, SyntaxError...)
        raise UnreadableImageError(f"cannot read image {path}: {type(e).__name__}: {e}") from e


def pil_to_tensor(im: Image.Image) -> torch.Tensor:
    """RGB PIL image -> Tensor[3, H, W] float32 in [0, 1]."""
    arr = np.asarray(im, dtype=np.uint8)
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    t = torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)))
    return t.to(torch.float32).div_(255.0)


_SWAP = {"left": "right", "right": "left", "l": "r", "r": "l"}


def _recase(word: str, like: str) -> str:
    if like.isupper():
        return word.upper()
    if like[:1].isupper():
        return word.capitalize()
    return word


def flip_map_from_names(names: Sequence[str]) -> List[int]:
    """Left/right permutation from keypoint names.

    ``result[i]`` is the index keypoint ``i`` becomes after a horizontal flip:
    names with ``left``/``right`` or ``l``/``r`` (as a ``_``-separated word, any case) swap
    with their counterpart; others map to themselves.
    """
    index = {n: i for i, n in enumerate(names)}
    out = list(range(len(names)))
    for i, n in enumerate(names):
        parts = n.split("_")
        swapped = [_SWAP.get(p.lower(), None) for p in parts]
        swapped = [(_recase(s_, p) if s_ else p) for s_, p in zip(swapped, parts)]
        other = "_".join(swapped)
        if other != n and other in index:
            out[i] = index[other]
    return out


def _polygon_area(poly: Sequence[float]) -> float:
    x = np.asarray(poly[0::2], dtype=np.float64)
    y = np.asarray(poly[1::2], dtype=np.float64)
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) and math.isfinite(float(v))


def _is_int(v: Any) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def rle_string_counts(counts: Union[str, bytes]) -> Optional[List[int]]:
    """Run lengths of a COCO compressed RLE string, or None when it is not one.

    Same format as pycocotools' ``rleFrString`` (6-bit chunks offset by 48,
    continuation bit 0x20, sign bit 0x10, runs after the second stored as a
    difference to the run two before), but strict: every character must be in
    ``'0'..'o'``, the last chunk must end its number and no run may be
    negative. pycocotools itself reads past such strings and returns garbage.
    """
    if isinstance(counts, str):
        try:
            counts = counts.encode("ascii")
        except UnicodeEncodeError:
            return None
    out: List[int] = []
    p, n = 0, len(counts)
    while p < n:
        x, k, more = 0, 0, True
        while more:
            if p >= n:
                return None  # the string ends inside a number
            c = counts[p] - 48
            if not 0 <= c < 64:
                return None
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p += 1
            k += 1
            if not more and (c & 0x10):
                x |= -1 << (5 * k)
        if len(out) > 2:
            x += out[-2]
        if x < 0:
            return None
        out.append(x)
    return out


def decode_segmentation(segm: Any, height: int, width: int) -> np.ndarray:
    """Polygon list / uncompressed RLE / compressed RLE -> uint8 mask [H, W]."""
    if isinstance(segm, list):
        rles = mask_utils.frPyObjects(segm, height, width)
        rle = mask_utils.merge(rles)
    elif isinstance(segm, dict) and isinstance(segm.get("counts"), list):
        rle = mask_utils.frPyObjects(segm, height, width)
    elif isinstance(segm, dict):
        rle = dict(segm)
        if isinstance(rle["counts"], str):
            rle["counts"] = rle["counts"].encode("ascii")
    else:
        raise TypeError(f"unsupported segmentation type {type(segm).__name__}")
    m = mask_utils.decode(rle)
    if m.ndim == 3:
        m = m.max(axis=2)
    return np.ascontiguousarray(m, dtype=np.uint8)


class CocoDataset(torch.utils.data.Dataset):
    """A COCO-format dataset (see the module docstring for the item format).

    Args:
        image_dir: folder that ``file_name`` entries are relative to.
        annotation_json: path to the COCO json (or an already-loaded dict).
        transforms: callable ``(image, target) -> (image, target)``, e.g.
            :func:`maskrcnn_native.data.transforms.build_transforms`.
        keypoints: ``None`` = load keypoints when the categories define them;
            ``True`` = require them; ``False`` = ignore them.
        skip_invalid: skip (and count in ``self.skipped``) malformed
            annotations and unreadable images instead of raising. Skipped
            annotations are also removed from ``self.coco`` (the evaluation
            ground truth), so COCOeval never sees them.
    """

    def __init__(
        self,
        image_dir: str,
        annotation_json: Union[str, os.PathLike, dict],
        *,
        transforms: Optional[Callable] = None,
        keypoints: Optional[bool] = None,
        skip_invalid: bool = False,
    ) -> None:
        self.image_dir = os.fspath(image_dir)
        self.transforms = transforms
        self.skip_invalid = skip_invalid
        self.skipped: Counter = Counter()
        data = self._load_json(annotation_json)
        data.setdefault("annotations", [])
        data.setdefault("categories", [])
        self._check_structure(data)

        with contextlib.redirect_stdout(io.StringIO()):
            self.coco = COCO()
            self.coco.dataset = data
            self.coco.createIndex()

        cats = sorted(self.coco.dataset["categories"], key=lambda c: c["id"])
        self.category_id_to_label: Dict[int, int] = {c["id"]: i + 1 for i, c in enumerate(cats)}
        self.label_to_category_id: Dict[int, int] = {v: k for k, v in self.category_id_to_label.items()}
        self.class_names: List[str] = ["__background__"] + [str(c.get("name", c["id"])) for c in cats]

        self._init_keypoints(cats, keypoints)
        self._index_images(data, skip_invalid)

    def _load_json(self, annotation_json: Union[str, os.PathLike, dict]) -> dict:
        """The COCO dict from a path or a dict; sets ``annotation_file``."""
        if isinstance(annotation_json, dict):
            self.annotation_file = "<dict>"
            data = annotation_json
        else:
            self.annotation_file = os.fspath(annotation_json)
            try:
                with open(self.annotation_file, "r", encoding="utf-8") as f:
                    data = json.load(f)
            except FileNotFoundError as e:
                raise FileNotFoundError(f"annotation file not found: {self.annotation_file}") from e
            except json.JSONDecodeError as e:
                raise InvalidAnnotationError(f"{self.annotation_file}: not valid JSON: {e}") from e
        if not isinstance(data, dict) or not isinstance(data.get("images"), list):
            raise InvalidAnnotationError(f"{self.annotation_file}: expected a COCO dict with an 'images' list")
        return data

    def _init_keypoints(self, cats: List[dict], keypoints: Optional[bool]) -> None:
        """Keypoint names, skeleton and flip map from the first category that defines them."""
        kp_cat = next((c for c in cats if c.get("keypoints")), None)
        if keypoints is True and kp_cat is None:
            raise InvalidAnnotationError(f"{self.annotation_file}: keypoints=True but no category defines 'keypoints'")
        self.with_keypoints = bool(kp_cat is not None and keypoints is not False)
        if self.with_keypoints:
            self.keypoint_names: List[str] = list(kp_cat["keypoints"])
            self.skeleton: List[Tuple[int, int]] = [
                (int(a) - 1, int(b) - 1) for a, b in kp_cat.get("skeleton", [])
            ]  # COCO is 1-based
            self.keypoint_flip_map: List[int] = flip_map_from_names(self.keypoint_names)
        else:
            self.keypoint_names, self.skeleton, self.keypoint_flip_map = [], [], []
        self.keypoint_sigmas = None  # COCO's defaults when len(keypoint_names) == 17

    def _index_images(self, data: dict, skip_invalid: bool) -> None:
        """Validated annotations per image; missing files and bad annotations raise or are counted."""
        self._anns_by_image: Dict[int, List[dict]] = {}
        self.ids: List[int] = []
        bad_ids = set()
        for img in sorted(self.coco.dataset["images"], key=lambda im: (isinstance(im["id"], str), im["id"])):
            good = []
            for ann in self.coco.imgToAnns.get(img["id"], []):
                try:
                    ok = self._validate(ann, img)
                except InvalidAnnotationError:
                    if not skip_invalid:
                        raise
                    self.skipped["invalid_annotations"] += 1
                    bad_ids.add(ann["id"])
                    continue
                if ok:
                    good.append(ann)
            path = os.path.join(self.image_dir, img["file_name"])
            if not os.path.isfile(path):
                if not skip_invalid:
                    raise UnreadableImageError(
                        f"image file not found: {path} (image id {img['id']}, listed in {self.annotation_file})"
                    )
                self.skipped["missing_images"] += 1
                continue
            self._anns_by_image[img["id"]] = good
            self.ids.append(img["id"])
        self._invalid_images: set = set()
        if bad_ids:
            data["annotations"] = [a for a in data["annotations"] if a["id"] not in bad_ids]
            with contextlib.redirect_stdout(io.StringIO()):
                self.coco.createIndex()

    # ------------------------------------------------------------------ checks
    def _where(self, ann: dict) -> str:
        return f"{self.annotation_file}: annotation id {ann.get('id')} (image id {ann.get('image_id')})"

    def _image_problem(self, img: Any) -> Optional[str]:
        if not isinstance(img, dict) or "id" not in img or "file_name" not in img:
            return f"image entry {img!r:.80} needs 'id' and 'file_name'"
        if not isinstance(img["id"], (int, str)) or isinstance(img["id"], bool):
            return f"image entry {img!r:.80}: 'id' must be an integer or a string"
        if not isinstance(img["file_name"], str) or not img["file_name"]:
            return f"image id {img['id']}: 'file_name' must be a non-empty string, got {img['file_name']!r:.80}"
        for key in ("height", "width"):
            if key in img and not (_is_int(img[key]) and img[key] > 0):
                return (
                    f"image id {img['id']} ({img['file_name']}): '{key}' must be a positive integer, "
                    f"got {img[key]!r:.40}"
                )
        return None

    def _check_structure(self, data: dict) -> None:
        images, seen, dup = [], Counter(), set()
        for img in data["images"]:
            problem = self._image_problem(img)
            if problem is not None:
                if not self.skip_invalid:
                    raise InvalidAnnotationError(f"{self.annotation_file}: {problem}")
                self.skipped["invalid_images"] += 1
                continue
            images.append(img)
            seen[img["id"]] += 1
        # Two images with one id would share their annotations: the first
        # image's objects trained on the second image's pixels.
        dup = {i for i, n in seen.items() if n > 1}
        if dup:
            if not self.skip_invalid:
                first = sorted(dup, key=str)[0]
                files = [im["file_name"] for im in images if im["id"] == first]
                raise InvalidAnnotationError(
                    f"{self.annotation_file}: duplicate image id {first!r} ({', '.join(files)}); "
                    f"{len(dup)} duplicated id(s) in all"
                )
            self.skipped["duplicate_image_ids"] += sum(seen[i] for i in dup)
            images = [im for im in images if im["id"] not in dup]
        data["images"] = images
        ids = set()
        annotations = []
        for ann in data["annotations"]:
            if not isinstance(ann, dict) or "id" not in ann or "image_id" not in ann:
                if not self.skip_invalid:
                    raise InvalidAnnotationError(
                        f"{self.annotation_file}: annotation {ann!r:.80} needs 'id' and 'image_id'"
                    )
                self.skipped["invalid_annotations"] += 1
                continue
            if (
                not isinstance(ann["id"], (int, str))
                or isinstance(ann["id"], bool)
                or not isinstance(ann["image_id"], (int, str))
                or isinstance(ann["image_id"], bool)
            ):
                if not self.skip_invalid:
                    raise InvalidAnnotationError(
                        f"{self.annotation_file}: annotation {ann!r:.80}: 'id' and 'image_id' must be "
                        "integers or strings"
                    )
                self.skipped["invalid_annotations"] += 1
                continue
            if ann["id"] in ids:
                if not self.skip_invalid:
                    raise InvalidAnnotationError(f"{self._where(ann)}: duplicate annotation id")
                self.skipped["invalid_annotations"] += 1
                continue
            ids.add(ann["id"])
            if ann["image_id"] in dup:
                self.skipped["invalid_annotations"] += 1  # belongs to a dropped duplicate image
                continue
            annotations.append(ann)
        data["annotations"] = annotations
        for c in data["categories"]:
            if (
                not isinstance(c, dict)
                or "id" not in c
                or not isinstance(c["id"], (int, str))
                or isinstance(c["id"], bool)
            ):
                raise InvalidAnnotationError(f"{self.annotation_file}: category {c!r:.80} needs an integer 'id'")
        known_images = {img["id"] for img in data["images"]}
        for ann in data["annotations"]:
            if ann["image_id"] not in known_images:
                if not self.skip_invalid:
                    raise InvalidAnnotationError(f"{self._where(ann)}: image id not in 'images'")
        if self.skip_invalid:
            before = len(data["annotations"])
            data["annotations"] = [a for a in data["annotations"] if a["image_id"] in known_images]
            self.skipped["invalid_annotations"] += before - len(data["annotations"])

    def _validate(self, ann: dict, img: dict) -> bool:
        """True = usable, False = degenerate (dropped + counted), raise = malformed."""
        where = self._where(ann)
        if ann.get("category_id") not in self.category_id_to_label:
            raise InvalidAnnotationError(f"{where}: unknown category_id {ann.get('category_id')!r}")
        bbox = ann.get("bbox")
        if not isinstance(bbox, (list, tuple)) or len(bbox) != 4 or not all(_is_number(v) for v in bbox):
            raise InvalidAnnotationError(f"{where}: bbox must be 4 finite numbers [x, y, w, h], got {bbox!r:.80}")
        if bbox[2] < 0 or bbox[3] < 0:
            raise InvalidAnnotationError(f"{where}: bbox width and height must be >= 0, got {list(bbox)}")
        h, w = img.get("height"), img.get("width")
        segm = ann.get("segmentation")
        if segm is not None:
            if isinstance(segm, list):
                if not all(isinstance(p, (list, tuple)) and all(_is_number(v) for v in p) for p in segm):
                    raise InvalidAnnotationError(f"{where}: polygon segmentation must be lists of numbers")
                if any(len(p) % 2 for p in segm):
                    raise InvalidAnnotationError(f"{where}: polygon with an odd number of coordinates")
            elif isinstance(segm, dict):
                counts, size = segm.get("counts"), segm.get("size")
                if not (isinstance(size, (list, tuple)) and len(size) == 2 and all(_is_int(v) and v > 0 for v in size)):
                    raise InvalidAnnotationError(
                        f"{where}: RLE segmentation needs 'size' [h, w] (positive integers), got {size!r:.40}"
                    )
                if not isinstance(counts, (list, str, bytes)):
                    raise InvalidAnnotationError(f"{where}: RLE 'counts' must be a list or a string")
                if isinstance(counts, list) and not all(_is_int(c) and c >= 0 for c in counts):
                    raise InvalidAnnotationError(f"{where}: RLE 'counts' must be non-negative integers")
                if h is not None and w is not None and (int(size[0]), int(size[1])) != (int(h), int(w)):
                    raise InvalidAnnotationError(
                        f"{where}: RLE size {list(size)} does not match the image size [{h}, {w}]"
                    )
                runs = counts if isinstance(counts, list) else rle_string_counts(counts)
                if runs is None:
                    raise InvalidAnnotationError(f"{where}: RLE 'counts' is not a valid compressed RLE string")
                # pycocotools returns uninitialised memory for runs that do not cover the image
                if sum(runs) != int(size[0]) * int(size[1]):
                    raise InvalidAnnotationError(
                        f"{where}: RLE runs sum to {sum(runs)} pixels, the size {list(size)} has "
                        f"{int(size[0]) * int(size[1])}"
                    )
            else:
                raise InvalidAnnotationError(
                    f"{where}: segmentation must be a polygon list or an RLE dict, got {type(segm).__name__}"
                )
        if self.with_keypoints and not ann.get("iscrowd", 0) and "keypoints" in ann:
            kp = ann["keypoints"]
            n = 3 * len(self.keypoint_names)
            if not isinstance(kp, list) or len(kp) != n or not all(_is_number(v) for v in kp):
                raise InvalidAnnotationError(
                    f"{where}: keypoints must be {n} numbers (x, y, v) * "
                    f"{len(self.keypoint_names)}, got {len(kp) if isinstance(kp, list) else kp!r}"
                )
        if ann.get("iscrowd", 0):
            return True
        if bbox[2] <= 0 or bbox[3] <= 0:
            self.skipped["degenerate_boxes"] += 1
            return False
        if isinstance(segm, list):
            polys = [p for p in segm if len(p) >= 6 and _polygon_area(p) > 0]
            if not polys:
                self.skipped["degenerate_polygons"] += 1
                return False
            if len(polys) != len(segm):  # keep the usable parts only
                ann["segmentation"] = polys
        return True

    # ------------------------------------------------------------------ access
    def __len__(self) -> int:
        return len(self.ids)

    @property
    def num_classes(self) -> int:
        """Number of classes including the background."""
        return len(self.class_names)

    def image_path(self, index: int) -> str:
        return os.path.join(self.image_dir, self.coco.imgs[self.ids[index]]["file_name"])

    def image_info(self, index: int) -> dict:
        return self.coco.imgs[self.ids[index]]

    def __getitem__(self, index: int):
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for a dataset of {len(self)} images")
        if not self.skip_invalid:
            image, target = self._load(index)
        else:
            # Unreadable images are discovered here; substitute the next readable one so
            # the length stays fixed (a DataLoader has already sampled the index).
            for k in range(len(self)):
                j = (index + k) % len(self)
                if j in self._invalid_images:
                    continue
                try:
                    image, target = self._load(j)
                    break
                except UnreadableImageError as e:
                    self._invalid_images.add(j)
                    self.skipped["unreadable_images"] += 1
                    warnings.warn(f"skipping: {e}")
            else:
                raise UnreadableImageError(f"{self.annotation_file}: no readable image in the dataset")
        if self.transforms is not None:
            image, target = self.transforms(image, target)
        return image, target

    def _load(self, index: int):
        info = self.coco.imgs[self.ids[index]]
        path = os.path.join(self.image_dir, info["file_name"])
        try:
            pil = load_image(path)
        except UnreadableImageError as e:
            raise UnreadableImageError(f"{e} (image id {info['id']})") from e.__cause__
        w, h = pil.size
        if ("height" in info and int(info["height"]) != h) or ("width" in info and int(info["width"]) != w):
            raise UnreadableImageError(
                f"image {path} (image id {info['id']}) is {w}x{h} after EXIF orientation but the "
                f"annotation file says {info.get('width')}x{info.get('height')}"
            )
        image = pil_to_tensor(pil)
        target = self._target(info, h, w)
        return image, target

    def _target(self, info: dict, h: int, w: int) -> dict:
        boxes, labels, masks, kps, crowd = [], [], [], [], []
        P = len(self.keypoint_names)
        for ann in self._anns_by_image[info["id"]]:
            x, y, bw, bh = (float(v) for v in ann["bbox"])
            box = [max(0.0, x), max(0.0, y), min(float(w), x + bw), min(float(h), y + bh)]
            if ann.get("iscrowd", 0):
                crowd.append(box)
                continue
            if box[2] <= box[0] or box[3] <= box[1]:
                self.skipped["degenerate_boxes"] += 1
                continue
            segm = ann.get("segmentation")
            if segm is None:
                m = np.zeros((h, w), np.uint8)
                m[int(box[1]) : int(math.ceil(box[3])), int(box[0]) : int(math.ceil(box[2]))] = 1
            else:
                try:
                    m = decode_segmentation(segm, h, w)
                except Exception as e:
                    err = InvalidAnnotationError(f"{self._where(ann)}: cannot decode segmentation: {e}")
                    if not self.skip_invalid:
                        raise err from e
                    self.skipped["invalid_annotations"] += 1
                    continue
            if m.shape != (h, w) or not m.any():
                self.skipped["degenerate_masks"] += 1
                continue
            boxes.append(box)
            labels.append(self.category_id_to_label[ann["category_id"]])
            masks.append(m)
            if self.with_keypoints:
                kp = ann.get("keypoints")
                if kp is None:
                    kps.append(np.zeros((P, 3), np.float32))
                else:
                    a = np.asarray(kp, dtype=np.float32).reshape(P, 3)
                    a[a[:, 2] == 0] = 0.0
                    kps.append(a)
        K = len(boxes)
        target = {
            "boxes": torch.tensor(boxes, dtype=torch.float32).reshape(K, 4),
            "labels": torch.tensor(labels, dtype=torch.int64),
            "masks": torch.from_numpy(np.stack(masks)) if K else torch.zeros((0, h, w), dtype=torch.uint8),
            "iscrowd": torch.zeros((K,), dtype=torch.int64),
            "crowd_boxes": torch.tensor(crowd, dtype=torch.float32).reshape(len(crowd), 4),
            "image_id": int(info["id"]),
            "orig_size": (h, w),
            "size": (h, w),
        }
        target["area"] = target["masks"].flatten(1).sum(1).to(torch.float32) if K else torch.zeros(0)
        if self.with_keypoints:
            target["keypoints"] = torch.from_numpy(np.stack(kps)) if K else torch.zeros((0, P, 3), dtype=torch.float32)
        return target

    def to_coco_api(self) -> COCO:
        """Ground truth for COCOeval: the original annotations (crowd regions included)."""
        return self.coco

    def __repr__(self) -> str:
        return (
            f"CocoDataset({len(self)} images, {self.num_classes - 1} classes, "
            f"keypoints={self.with_keypoints}, file={self.annotation_file!r})"
        )
