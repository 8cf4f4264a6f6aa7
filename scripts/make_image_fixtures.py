#!/usr/bin/env python3
"""Writes the image fixtures of Tests/LorsDataTests/Fixtures/images/: small PNG and JPEG files of every kind the
image reader handles, and PIL's decoded pixels of each, which the Swift tests compare with ours.

    python3 scripts/make_image_fixtures.py   # needs Pillow and NumPy (pip install pillow numpy)

For every image NAME (*.png, *.jpg) there are NAME.L.raw and NAME.RGB.raw: the bytes of
Image.open(NAME).convert("L") and .convert("RGB"), row-major (HWC). manifest.json lists each file with its size, the
channels of its own kind (1 grey, 3 colour) and its format. Everything is generated from fixed seeds, so rerunning
the script rewrites the same files (as long as Pillow's encoders do not change).
"""
import json
import os
import struct
import zlib

import numpy as np
from PIL import Image

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "LorsDataTests", "Fixtures", "images")
WIDTH, HEIGHT = 37, 29  # odd sizes: partial JPEG blocks and chroma samples at the edges


def scene(seed):
    """An RGB picture with smooth gradients, hard edges and some noise (uint8, HWC)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float64)
    r = 255 * x / (WIDTH - 1)
    g = 255 * y / (HEIGHT - 1)
    b = 128 + 100 * np.sin(x / 4.0) * np.cos(y / 5.0)
    disc = (x - WIDTH * 0.6) ** 2 + (y - HEIGHT * 0.4) ** 2 < (HEIGHT * 0.3) ** 2
    r[disc], g[disc], b[disc] = 250, 30, 60
    rgb = np.stack([r, g, b], axis=-1) + rng.normal(0, 6, (HEIGHT, WIDTH, 3))
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def write_png16(path, samples, color_type):
    """A 16-bit PNG (PIL writes 16-bit grey only): samples uint16 HWC, colour type 0 (grey) or 2 (RGB)."""
    height, width = samples.shape[:2]
    rows = samples.reshape(height, -1).astype(">u2").tobytes()
    stride = len(rows) // height
    raw = b"".join(b"\x00" + rows[i * stride:(i + 1) * stride] for i in range(height))
    header = struct.pack(">IIBBBBB", width, height, 16, color_type, 0, 0, 0)
    data = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", zlib.compress(raw, 9)) \
        + png_chunk(b"IEND", b"")
    with open(path, "wb") as f:
        f.write(data)


def main():
    os.makedirs(OUT, exist_ok=True)
    rgb = scene(1)
    grey = np.asarray(Image.fromarray(rgb).convert("L"))
    alpha = np.linspace(0, 255, WIDTH * HEIGHT).reshape(HEIGHT, WIDTH).astype(np.uint8)
    files = {}

    Image.fromarray(grey, "L").save(os.path.join(OUT, "grey.png"))
    Image.fromarray(rgb, "RGB").save(os.path.join(OUT, "rgb.png"))
    Image.fromarray(np.dstack([rgb, alpha]), "RGBA").save(os.path.join(OUT, "rgba.png"))
    Image.fromarray(np.dstack([grey, alpha]), "LA").save(os.path.join(OUT, "grey_alpha.png"))
    palette = Image.fromarray(scene(2), "RGB").quantize(colors=16, dither=Image.Dither.NONE)
    palette.save(os.path.join(OUT, "palette.png"), transparency=3)
    Image.fromarray((grey > 128).astype(np.uint8) * 255, "L").convert("1").save(os.path.join(OUT, "bilevel.png"))
    samples16 = rgb.astype(np.uint16) * 257 + np.random.default_rng(3).integers(0, 257, rgb.shape).astype(np.uint16)
    write_png16(os.path.join(OUT, "rgb16.png"), samples16, 2)
    write_png16(os.path.join(OUT, "grey16.png"), samples16[:, :, :1], 0)

    Image.fromarray(grey, "L").save(os.path.join(OUT, "grey.jpg"), quality=85)
    Image.fromarray(rgb, "RGB").save(os.path.join(OUT, "rgb420.jpg"), quality=85, subsampling=2)
    Image.fromarray(rgb, "RGB").save(os.path.join(OUT, "rgb444.jpg"), quality=95, subsampling=0)
    Image.fromarray(rgb, "RGB").save(os.path.join(OUT, "rgb422_progressive.jpg"), quality=80, subsampling=1,
                                     progressive=True)

    for name in sorted(os.listdir(OUT)):
        if not (name.endswith(".png") or name.endswith(".jpg")):
            continue
        path = os.path.join(OUT, name)
        with Image.open(path) as image:
            image.load()
            mode = image.mode
            for target in ("L", "RGB"):
                if mode.startswith("I;16") or mode == "I":
                    # PIL clips 16-bit grey to 0..255 on convert; the reader (like PIL for 16-bit RGB) scales instead.
                    values = np.asarray(image, dtype=np.uint32)
                    scaled = ((values * 255 + 32767) // 65535).astype(np.uint8)
                    converted = Image.fromarray(scaled, "L").convert(target)
                else:
                    converted = image.convert(target)
                with open(os.path.join(OUT, f"{name}.{target}.raw"), "wb") as f:
                    f.write(np.asarray(converted, dtype=np.uint8).tobytes())
            colour = mode in ("RGB", "RGBA", "P", "PA", "CMYK", "YCbCr")
            files[name] = {"width": image.width, "height": image.height, "channels": 3 if colour else 1,
                           "format": "png" if name.endswith(".png") else "jpeg", "pil_mode": mode}
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump({"images": files}, f, indent=2, sort_keys=True)
        f.write("\n")
    total = sum(os.path.getsize(os.path.join(OUT, n)) for n in os.listdir(OUT))
    print(f"wrote {len(files)} images and their pixels to {os.path.normpath(OUT)} ({total} bytes)")


if __name__ == "__main__":
    main()
