"""Golden checks of the converted models (run by scripts/convert-models and `--check`).

Fails (exit 1) unless: NanoDet fp32 and int8 find 4 persons on bus.jpg and 2 on zidane.jpg, int8
boxes overlap the fp32 ones (IoU > 0.8); RetinaFace finds the 2 faces of zidane.jpg and the mask
classifier calls both no_mask. Prints latencies and, when ../shared/data is there, the mask
accuracy on the labelled crops."""
import glob
import os
import sys
import time

import numpy as np
import onnxruntime as ort
from PIL import Image

from common import box_iou, mask_input, nanodet_detect, nanodet_input, retinaface_detect

models, samples, shared = sys.argv[1], sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else ""
fails = []


def session(name, threads=1):
    o = ort.SessionOptions()
    o.log_severity_level = 3
    o.intra_op_num_threads = threads
    return ort.InferenceSession(os.path.join(models, name), o, providers=["CPUExecutionProvider"])


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        fails.append(what)


fp32, int8 = session("nanodet-m.onnx"), session("nanodet-m-int8.onnx")
face, mask = session("retinaface.onnx"), session("mask-mobilenetv2.onnx")
for img_name, want in (("bus.jpg", 4), ("zidane.jpg", 2)):
    img = Image.open(os.path.join(samples, img_name))
    a, b = nanodet_detect(fp32, img), nanodet_detect(int8, img)
    check(len(a) == want, f"nanodet fp32 {img_name}: {len(a)} persons (want {want})")
    check(len(b) == want, f"nanodet int8 {img_name}: {len(b)} persons (want {want})")
    ious = [max((box_iou(x, y) for y in b), default=0.0) for x in a]
    check(all(i > 0.8 for i in ious), f"int8 vs fp32 {img_name}: IoU {[round(i, 3) for i in ious]}")

img = Image.open(os.path.join(samples, "zidane.jpg"))
faces = retinaface_detect(face, img)
check(len(faces) == 2, f"retinaface zidane.jpg: {len(faces)} faces (want 2)")
for f in faces:
    p = mask.run(None, {"input_1:0": mask_input(img, f)})[0][0]
    check(p[1] > p[0], f"mask zidane face {[round(v) for v in f[:4]]}: no_mask {p[1]:.3f}")

x = nanodet_input(Image.open(os.path.join(samples, "bus.jpg")))
for name in ("nanodet-m.onnx", "nanodet-m-int8.onnx"):
    for t in (1, 2):
        s = session(name, t)
        for _ in range(3):
            s.run(None, {"input_1:0": x})
        ts = []
        for _ in range(20):
            t0 = time.perf_counter()
            s.run(None, {"input_1:0": x})
            ts.append(time.perf_counter() - t0)
        print(f"latency {name} threads={t}: median {1000 * sorted(ts)[10]:.1f} ms")

crops = os.path.join(shared, "masks", "crops") if shared else ""
if crops and os.path.isdir(crops):
    for margin in (0.0,):
        conf = {}
        for truth in ("with_mask", "without_mask"):
            for p in sorted(glob.glob(os.path.join(crops, truth, "*"))):
                im = Image.open(p).convert("RGB")
                pr = mask.run(None, {"input_1:0": mask_input(im, (0, 0, im.width, im.height), margin)})[0][0]
                said = "with_mask" if pr[0] > pr[1] else "without_mask"
                conf[(truth, said)] = conf.get((truth, said), 0) + 1
        ok = conf.get(("with_mask", "with_mask"), 0) + conf.get(("without_mask", "without_mask"), 0)
        n = sum(conf.values())
        print(f"mask classifier on data/masks/crops (crop as given): {ok}/{n} = {100 * ok / n:.1f}% {conf}")
else:
    print("note: ../shared/data/masks absent: mask accuracy on labelled crops not measured")

if fails:
    sys.exit(f"golden checks failed: {len(fails)}")
print("golden checks passed")
