#!/usr/bin/env python3
"""A synthetic COCO instances file of train2017's size and shape, for timing the COCO index reader.

Defaults match instances_train2017.json: 118,287 images (1,021 without annotations), 860,001 annotations, 80
categories with COCO's ids (1..90 less 12, 26, 29, 30, 45, 66, 68, 69, 71, 83), about 448 MiB. Like the real file
it is compact JSON with the keys in COCO's order ("info", "licenses", "images", "annotations", "categories" last),
and most of its bytes are `segmentation` polygons (about 29 points on average, two decimals); 1% of the annotations
are crowd regions with uncompressed RLE `{"counts": [...], "size": [h, w]}`. A few images are smaller than 32 px and a
few boxes are narrower or lower than 1 px, so the filters have something to drop.

Deterministic: the same arguments give the same bytes (Python's `random` with a fixed seed, no NumPy).
Written to /tmp by default; never commit the output.

    python3 scripts/make_large_coco_json.py [--out /tmp/lors_coco_train2017_synthetic.json]
        [--images 118287] [--annotations 860001] [--seed 0]
"""
import argparse
import math
import os
import random
import sys

CATEGORY_IDS = [i for i in range(1, 91) if i not in (12, 26, 29, 30, 45, 66, 68, 69, 71, 83)]
NAMES = ("person bicycle car motorcycle airplane bus train truck boat traffic_light fire_hydrant stop_sign "
         "parking_meter bench bird cat dog horse sheep cow elephant bear zebra giraffe backpack umbrella handbag tie "
         "suitcase frisbee skis snowboard sports_ball kite baseball_bat baseball_glove skateboard surfboard "
         "tennis_racket bottle wine_glass cup fork knife spoon bowl banana apple sandwich orange broccoli carrot "
         "hot_dog pizza donut cake chair couch potted_plant bed dining_table toilet tv laptop mouse remote keyboard "
         "cell_phone microwave oven toaster sink refrigerator book clock vase scissors teddy_bear hair_drier "
         "toothbrush").split()
SUPER = ["person", "vehicle", "outdoor", "animal", "accessory", "sports", "kitchen", "food", "furniture",
         "electronic", "appliance", "indoor"]
SIZES = [(640, 480), (640, 427), (480, 640), (640, 426), (427, 640), (500, 375), (640, 360), (612, 612), (640, 512)]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="/tmp/lors_coco_train2017_synthetic.json")
    parser.add_argument("--images", type=int, default=118287)
    parser.add_argument("--annotations", type=int, default=860001)
    parser.add_argument("--empty-images", type=int, default=1021, help="images no annotation refers to")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.empty_images >= args.images:
        sys.exit("--empty-images must be below --images")

    rng = random.Random(args.seed)
    r = rng.random
    n_images, n_ann = args.images, args.annotations
    annotated = n_images - args.empty_images

    # Images: increasing unique ids, COCO-like sizes; every 5000th image has a side below 32 px.
    images = []
    for i in range(n_images):
        image_id = 4 * i + 1 + int(r() * 3)
        w, h = SIZES[int(r() * len(SIZES))]
        if i % 5000 == 4999:
            w, h = 24, 40
        images.append((image_id, w, h))
    # Annotated images are spread over the list; the others get no annotation.
    empty = set()
    while len(empty) < args.empty_images:
        empty.add(int(r() * n_images))
    annotated_images = [i for i in range(n_images) if i not in empty]
    assert len(annotated_images) == annotated
    # Every annotated image gets one annotation, the rest go to random images; then the order is shuffled.
    owners = annotated_images + [annotated_images[int(r() * annotated)] for _ in range(max(0, n_ann - annotated))]
    owners = owners[:n_ann]
    for k in range(len(owners) - 1, 0, -1):
        j = int(r() * (k + 1))
        owners[k], owners[j] = owners[j], owners[k]

    tables = {}

    def ring(k):
        if k not in tables:
            tables[k] = [(math.cos(2 * math.pi * j / k), math.sin(2 * math.pi * j / k)) for j in range(k)]
        return tables[k]

    with open(args.out + ".tmp", "w", encoding="utf-8") as out:
        out.write('{"info":{"description":"lors synthetic COCO-shaped instances (train2017 size)","url":"",'
                  '"version":"1.0","year":2017,"contributor":"lors","date_created":"2017/09/01"},'
                  '"licenses":[{"url":"http://creativecommons.org/licenses/by-nc-sa/2.0/","id":1,'
                  '"name":"Attribution-NonCommercial-ShareAlike License"}],"images":[')
        chunk = []
        for i, (image_id, w, h) in enumerate(images):
            chunk.append('%s{"license":%d,"file_name":"%012d.jpg","coco_url":"http://images.cocodataset.org/train2017/'
                         '%012d.jpg","height":%d,"width":%d,"date_captured":"2013-11-%02d %02d:%02d:%02d",'
                         '"flickr_url":"http://farm%d.staticflickr.com/%d/%d_%010x_z.jpg","id":%d}'
                         % ("," if i else "", 1 + int(r() * 8), image_id, image_id, h, w, 1 + int(r() * 28),
                            int(r() * 24), int(r() * 60), int(r() * 60), 1 + int(r() * 9), 1000 + int(r() * 8999),
                            int(r() * 9e9), int(r() * 2**40), image_id))
            if len(chunk) == 10000:
                out.write("".join(chunk))
                chunk = []
        out.write("".join(chunk))
        out.write('],"annotations":[')
        chunk = []
        for k, owner in enumerate(owners):
            image_id, iw, ih = images[owner]
            bw = max(2.0, iw * (0.02 + 0.6 * r() ** 2))
            bh = max(2.0, ih * (0.02 + 0.6 * r() ** 2))
            x = round(r() * (iw - bw), 2)
            y = round(r() * (ih - bh), 2)
            bw, bh = round(bw, 2), round(bh, 2)
            if k % 20000 == 7:  # a degenerate box: narrower than 1 px
                bw = 0.5
            crowd = k % 97 == 13
            category = CATEGORY_IDS[int(r() ** 1.5 * len(CATEGORY_IDS))]
            if crowd:
                counts, total = [], int(bw) * int(bh) + 1
                for _ in range(120 + int(r() * 500)):
                    counts.append(int(r() * 300))
                segmentation = '{"counts":[%s],"size":[%d,%d]}' % (",".join(map(str, counts)), ih, iw)
                ann_id = 900100000000 + k
            else:
                parts = []
                for _ in range(1 if r() < 0.9 else 2 + int(r() * 3)):
                    points = 6 + int(r() * r() * 68)
                    cx, cy, rx, ry = x + bw / 2, y + bh / 2, bw / 2, bh / 2
                    coords = []
                    for c, s in ring(points):
                        q = 0.7 + 0.3 * r()
                        coords.append(round(cx + rx * q * c, 2))
                        coords.append(round(cy + ry * q * s, 2))
                    parts.append("[" + ",".join(map(repr, coords)) + "]")
                segmentation = "[" + ",".join(parts) + "]"
                ann_id = k + 1
            area = bw * bh * (0.45 + 0.4 * r())
            chunk.append('%s{"segmentation":%s,"area":%r,"iscrowd":%d,"image_id":%d,"bbox":[%r,%r,%r,%r],'
                         '"category_id":%d,"id":%d}'
                         % ("," if k else "", segmentation, area, 1 if crowd else 0, image_id, x, y, bw, bh, category,
                            ann_id))
            if len(chunk) == 5000:
                out.write("".join(chunk))
                chunk = []
        out.write("".join(chunk))
        out.write('],"categories":[')
        out.write(",".join('{"supercategory":"%s","id":%d,"name":"%s"}'
                           % (SUPER[min(len(SUPER) - 1, i // 7)], cid, NAMES[i].replace("_", " "))
                           for i, cid in enumerate(CATEGORY_IDS)))
        out.write("]}")
    os.replace(args.out + ".tmp", args.out)
    print("%s: %d bytes, %d images, %d annotations, %d categories"
          % (args.out, os.path.getsize(args.out), n_images, len(owners), len(CATEGORY_IDS)))


if __name__ == "__main__":
    main()
