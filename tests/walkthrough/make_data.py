#!/usr/bin/env python3
"""Writes the walk-through's small image set (docs/examples.md, "From a run to a comparison").

Python's standard library only (zlib, struct, random): 64 PNG images of 40x40 pixels, 16 contents
(smooth colour gradients), each with 4 amounts of added Gaussian noise (standard deviation 30·level,
level uniform in [0, 3]), and a generic CSV for training (path,mos,group,type) and one for testing
(path,mos,type; contents 0-9 train, 10-15 test) with a MOS that falls with the noise: mos = 5 - level + content/100.
Usage: make_data.py OUT_DIR
"""
import os
import random
import struct
import sys
import zlib


def write_png(path, pixels, width, height):
    raw = b"".join(b"\x00" + bytes(pixels[y * width * 3:(y + 1) * width * 3]) for y in range(height))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)) +
                chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def main():
    out = sys.argv[1]
    os.makedirs(os.path.join(out, "images"), exist_ok=True)
    size = 40
    train, test = ["path,mos,group,type"], ["path,mos,type"]
    for content in range(16):
        rng = random.Random(content)
        base = [rng.randrange(256) for _ in range(6)]
        for image in range(4):
            noise = random.Random(1000 * content + image)
            level = noise.uniform(0, 3)
            pixels = []
            for y in range(size):
                for x in range(size):
                    for c in range(3):
                        v = base[c] + (base[c + 3] - base[c]) * (x + y) / (2 * size)
                        v += noise.gauss(0, 1) * 30 * level
                        pixels.append(max(0, min(255, int(round(v)))))
            name = "images/c%02d_%d.png" % (content, image)
            write_png(os.path.join(out, name), pixels, size, size)
            mos = 5 - level + content / 100
            if content < 10:
                train.append("%s,%.2f,c%02d,noise" % (name, mos, content))
            else:
                test.append("%s,%.2f,noise" % (name, mos))
    for name, rows in (("train.csv", train), ("test.csv", test)):
        with open(os.path.join(out, name), "w") as f:
            f.write("\n".join(rows) + "\n")


if __name__ == "__main__":
    main()
