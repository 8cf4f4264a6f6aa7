#!/usr/bin/env python3
"""Writes Tests/LorsDataTests/Fixtures/pipeline/: source images, OpenCV INTER_LINEAR resizes of them, and boxes
after resize / flip / crop computed with mmdetection's (3.x HorizontalBoxes, mmcv rescale_size) float32 formulas.

    python3 -m venv /tmp/venv && /tmp/venv/bin/pip install "opencv-python-headless<5" numpy pillow
    /tmp/venv/bin/python scripts/make_pipeline_fixtures.py

Only needed to regenerate the committed fixtures; the Swift tests read the files.
"""
import json
import os

import cv2
import numpy as np
from PIL import Image, ImageDraw

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "LorsDataTests", "Fixtures", "pipeline")


def make_image(w, h, mode, seed):
    rng = np.random.RandomState(seed)
    channels = 3 if mode == "RGB" else 1
    noise = rng.randint(0, 256, size=(h, w, channels), dtype=np.uint8)
    img = Image.fromarray(noise[..., 0] if channels == 1 else noise, mode)
    draw = ImageDraw.Draw(img)
    for _ in range(6):
        x0, y0 = rng.randint(0, w), rng.randint(0, h)
        x1, y1 = x0 + rng.randint(3, w // 2), y0 + rng.randint(3, h // 2)
        fill = int(rng.randint(0, 256)) if channels == 1 else tuple(int(v) for v in rng.randint(0, 256, 3))
        (draw.ellipse if rng.rand() < 0.5 else draw.rectangle)([x0, y0, x1, y1], fill=fill)
    return img


# mmcv.rescale_size with a tuple scale (keep_ratio=True).
def rescale_size(w, h, scale):
    s = min(max(scale) / max(h, w), min(scale) / min(h, w))
    return int(w * float(s) + 0.5), int(h * float(s) + 0.5)


# mmdet Resize._resize_bboxes: rescale_ by (new_w / w, new_h / h) in float32, then clip_ to the new image.
def resize_boxes(boxes, w, h, new_w, new_h):
    factor = np.array([new_w / w, new_h / h] * 2, dtype=np.float32)
    b = boxes * factor
    b[:, 0::2] = np.clip(b[:, 0::2], 0, new_w)
    b[:, 1::2] = np.clip(b[:, 1::2], 0, new_h)
    return b


# HorizontalBoxes.flip_(img_shape, 'horizontal').
def flip_boxes(boxes, w):
    b = boxes.copy()
    b[:, 0] = np.float32(w) - boxes[:, 2]
    b[:, 2] = np.float32(w) - boxes[:, 0]
    return b


# RandomCrop._crop_data: translate_, clip_ (bbox_clip_border), is_inside → keep (allow_negative_crop=True).
def crop_boxes(boxes, labels, w, h, x, y, cw, ch):
    cw, ch = min(cw, w - x), min(ch, h - y)
    b = boxes + np.array([-x, -y, -x, -y], dtype=np.float32)
    b[:, 0::2] = np.clip(b[:, 0::2], 0, cw)
    b[:, 1::2] = np.clip(b[:, 1::2], 0, ch)
    inside = (b[:, 0] < cw) & (b[:, 1] < ch) & (b[:, 2] > 0) & (b[:, 3] > 0)
    return b[inside], labels[inside], cw, ch


def main():
    os.makedirs(OUT, exist_ok=True)
    sources = [("rgb_a.png", 97, 61, "RGB"), ("grey_b.png", 50, 73, "L"), ("rgb_c.jpg", 120, 90, "RGB"),
               ("rgb_d.png", 64, 48, "RGB")]
    targets = {"rgb_a.png": [(150, 101), (40, 27), (33, 77), (97, 30), (200, 61)],
               "grey_b.png": [(25, 36), (91, 120), (49, 74), (7, 5)],
               "rgb_c.jpg": [(60, 45), (181, 137), (119, 91)],
               "rgb_d.png": [(32, 24), (128, 96), (21, 16)]}
    resizes = []
    for k, (name, w, h, mode) in enumerate(sources):
        img = make_image(w, h, mode, seed=k)
        path = os.path.join(OUT, name)
        if name.endswith(".jpg"):
            img.save(path, quality=90)
        else:
            img.save(path)
        pixels = np.asarray(Image.open(path).convert(mode))
        for tw, th in targets[name]:
            out = cv2.resize(pixels, (tw, th), interpolation=cv2.INTER_LINEAR)
            expected = f"{os.path.splitext(name)[0]}_{tw}x{th}.png"
            Image.fromarray(out, mode).save(os.path.join(OUT, expected))
            resizes.append({"source": name, "width": tw, "height": th, "expected": expected})

    rng = np.random.RandomState(7)
    cases = []
    for case in range(8):
        w, h = int(rng.randint(200, 900)), int(rng.randint(200, 900))
        n = 6
        x1 = rng.uniform(0, w - 2, n).astype(np.float32)
        y1 = rng.uniform(0, h - 2, n).astype(np.float32)
        x2 = np.minimum(x1 + rng.uniform(1, w / 2, n).astype(np.float32), np.float32(w))
        y2 = np.minimum(y1 + rng.uniform(1, h / 2, n).astype(np.float32), np.float32(h))
        boxes = np.stack([x1, y1, x2, y2], 1).astype(np.float32)
        labels = rng.randint(0, 80, n).astype(np.int32)
        ops, b, lab, cw_, ch_ = [], boxes.copy(), labels.copy(), w, h
        if case % 2 == 0:
            ops.append(["flip"])
            b = flip_boxes(b, cw_)
        nw, nh = rescale_size(cw_, ch_, (1333, [400, 500, 600, 800][case % 4]))
        ops.append(["resize", nw, nh])
        b = resize_boxes(b, cw_, ch_, nw, nh)
        cw_, ch_ = nw, nh
        if case >= 2:
            crop_h = int(rng.randint(min(ch_, 384), min(ch_, 600) + 1))
            crop_w = int(rng.randint(min(cw_, 384), min(cw_, 600) + 1))
            oy, ox = int(rng.randint(0, max(ch_ - crop_h, 0) + 1)), int(rng.randint(0, max(cw_ - crop_w, 0) + 1))
            if case == 7:  # a crop that keeps no box
                b[:, 0::2] = np.clip(b[:, 0::2], 0, 10)
                b[:, 2] = np.minimum(b[:, 2], 10)
                ox, crop_w = cw_ - 50, 50
                boxes = None  # the boxes of this case are the clipped ones above, given as the input
            ops.append(["crop", ox, oy, crop_w, crop_h])
            if boxes is None:
                start = {"boxes": b.copy(), "ops_from": len(ops) - 1}
            b, lab, cw_, ch_ = crop_boxes(b, lab, cw_, ch_, ox, oy, crop_w, crop_h)
            s = rescale_size(cw_, ch_, (1333, 800))
            ops.append(["resize", s[0], s[1]])
            b = resize_boxes(b, cw_, ch_, s[0], s[1])
            cw_, ch_ = s
        entry = {"width": w, "height": h, "ops": ops, "expected_width": cw_, "expected_height": ch_,
                 "expected_boxes": [float(v) for v in b.reshape(-1)], "expected_labels": [int(v) for v in lab]}
        if boxes is None:
            entry["note"] = "input boxes are given after the flip and resize ops (which are dropped)"
            entry["ops"] = ops[start["ops_from"]:]
            entry["width"], entry["height"] = nw, nh
            entry["boxes"] = [float(v) for v in start["boxes"].reshape(-1)]
        else:
            entry["boxes"] = [float(v) for v in boxes.reshape(-1)]
        entry["labels"] = [int(v) for v in labels]
        entry["rescale_check"] = {"scale": [1333, 800], "size": list(rescale_size(w, h, (1333, 800)))}
        cases.append(entry)
    with open(os.path.join(OUT, "pipeline.json"), "w") as f:
        json.dump({"opencv": cv2.__version__, "resizes": resizes, "box_cases": cases}, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
