"""The vision reader's work done the common Python ways, for a side-by-side figure with
`cargo bench --bench vision` on the same 1080x2400 screenshots: Pillow + pytesseract
(beside Tapwire's tesseract engine) or RapidOCR, PP-OCR in onnxruntime (beside its ppocr).

Per screenshot:
- decode: Pillow opens the PNG;
- segmentation: the same 1-dp grid (the picture sampled 360 cells wide), own and others'
  bubbles found by their fill colours with a flood fill, each bubble cut out at full size,
  made dark-on-white and split into lines by its inked rows (names and centre lines, which
  the Rust reader also finds, are left out here: this part is a lower bound);
- OCR: pytesseract on exactly the line images the Rust reader handed tesseract for that
  screen (saved by `TAPWIRE_VISION_CROPS`), same languages and page segmentation modes.
  pytesseract runs the tesseract program once per image, as it always does.
- `--ocr rapidocr`: RapidOCR's recogniser (the same PP-OCRv4 model Tapwire's ppocr engine
  runs) on the same line images, one onnxruntime thread;
- `--ocr rapidocr-full`: what RapidOCR users run: its whole pipeline (text detection,
  direction classifier, recogniser) on the whole screenshot, one thread, in place of the
  segmentation and line images.

Usage: vision.py [--ocr tesseract|rapidocr|rapidocr-full] SHOT.png CROPS_DIR [...].
Prints one JSON line with the mean milliseconds per screen.
"""
import json
import os
import sys
import time

from PIL import Image, ImageOps

OWN = [(0x95, 0xEC, 0x69), (0xA0, 0xE7, 0x5A), (0x3E, 0xB5, 0x75)]
OTHERS_LIGHT = (0xFF, 0xFF, 0xFF)
OTHERS_DARK = (0x2C, 0x2C, 0x2C)
LANGS = os.environ.get("TAPWIRE_TESSERACT_LANGS", "chi_sim+eng")


def near(a, b, tol):
    return abs(a[0] - b[0]) <= tol and abs(a[1] - b[1]) <= tol and abs(a[2] - b[2]) <= tol


def lum(c):
    return 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2]


def segment(img):
    w, h = img.size
    scale = w / 360.0
    gh = int(h / scale)
    grid = img.resize((360, gh), Image.NEAREST)
    px = grid.load()
    bg = px[2, gh // 2]
    others = OTHERS_DARK if lum(bg) < 100 else OTHERS_LIGHT

    def cls(x, y):
        c = px[x, y]
        if any(near(c, g, 10) for g in OWN):
            return 1
        if near(c, others, 5):
            return 2
        return 0

    seen = bytearray(360 * gh)
    bubbles = []
    for y in range(gh):
        for x in range(360):
            i = y * 360 + x
            if seen[i]:
                continue
            k = cls(x, y)
            if not k:
                continue
            seen[i] = 1
            stack = [(x, y)]
            x0, y0, x1, y1, n = x, y, x, y, 0
            while stack:
                cx, cy = stack.pop()
                n += 1
                x0, y0, x1, y1 = min(x0, cx), min(y0, cy), max(x1, cx), max(y1, cy)
                for nx, ny in ((cx - 1, cy), (cx + 1, cy), (cx, cy - 1), (cx, cy + 1)):
                    if 0 <= nx < 360 and 0 <= ny < gh:
                        j = ny * 360 + nx
                        if not seen[j] and cls(nx, ny) == k:
                            seen[j] = 1
                            stack.append((nx, ny))
            bw, bh = x1 - x0 + 1, y1 - y0 + 1
            if bw >= 16 and bh >= 14 and n >= 0.3 * bw * bh and bw < 340:
                bubbles.append((x0, y0, x1 + 1, y1 + 1))
    lines = []
    for x0, y0, x1, y1 in bubbles:
        box = (int((x0 + 9) * scale), int((y0 + 2) * scale), int((x1 - 4) * scale), int((y1 - 2) * scale))
        crop = ImageOps.autocontrast(img.crop(box).convert("L"))
        if lum(bg) < 100:
            crop = ImageOps.invert(crop)
        cw, ch = crop.size
        data = crop.load()
        inked = [any(data[x, y] < 170 for x in range(0, cw, 2)) for y in range(ch)]
        start = None
        for y, ink in enumerate(inked + [False]):
            if ink and start is None:
                start = y
            elif not ink and start is not None:
                lines.append(crop.crop((0, start, cw, y)))
                start = None
    return lines


def line_reader(ocr):
    """A function reading one line image, with its engine loaded once, outside the clock."""
    if ocr == "tesseract":
        import pytesseract

        def read(line):
            # A count badge is read as one word, everything else as one raw line.
            psm = 8 if line.width < 2 * line.height else 13
            pytesseract.image_to_string(line, lang=LANGS, config=f"--psm {psm} --dpi 300")

        return read
    import numpy
    from rapidocr_onnxruntime import RapidOCR

    engine = RapidOCR(intra_op_num_threads=1, inter_op_num_threads=1)
    if ocr == "rapidocr-full":
        return lambda image: engine(numpy.asarray(image.convert("RGB")))
    return lambda line: engine(
        numpy.asarray(line.convert("RGB")), use_det=False, use_cls=False, use_rec=True
    )


def main(args):
    ocr = "tesseract"
    if args[:1] == ["--ocr"]:
        ocr, args = args[1], args[2:]
    read = line_reader(ocr)
    pairs = list(zip(args[0::2], args[1::2]))
    totals = {"decode": 0.0, "segment": 0.0, "ocr": 0.0}
    crops = 0
    for shot, crop_dir in pairs:
        t = time.perf_counter()
        img = Image.open(shot)
        img.load()
        img = img.convert("RGB")
        totals["decode"] += time.perf_counter() - t
        if ocr == "rapidocr-full":
            t = time.perf_counter()
            read(img)
            totals["ocr"] += time.perf_counter() - t
            continue
        t = time.perf_counter()
        segment(img)
        totals["segment"] += time.perf_counter() - t
        t = time.perf_counter()
        for name in sorted(os.listdir(crop_dir)):
            read(Image.open(os.path.join(crop_dir, name)))
            crops += 1
        totals["ocr"] += time.perf_counter() - t
    n = max(len(pairs), 1)
    out = {k + "_ms": round(v * 1000 / n, 1) for k, v in totals.items()}
    out["total_ms"] = round(sum(totals.values()) * 1000 / n, 1)
    out["ocr"] = ocr
    out["screens"] = len(pairs)
    out["lines_per_screen"] = round(crops / n, 1)
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1:])
