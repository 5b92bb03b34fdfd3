"""Pre/post-processing shared by the calibration and the golden checks (mirrors src/detect/)."""
import numpy as np
from PIL import Image

MEAN_BGR = np.array([103.53, 116.28, 123.675], dtype=np.float32)
STD_BGR = np.array([57.375, 57.12, 58.395], dtype=np.float32)
STRIDES = (8, 16, 32)


def nanodet_input(img: Image.Image) -> np.ndarray:
    """Stretch to 416x416, BGR, (x - mean) / std, NCHW (FACTS.md section 3)."""
    a = np.asarray(img.convert("RGB").resize((416, 416), Image.BILINEAR), dtype=np.float32)[:, :, ::-1]
    a = (a - MEAN_BGR) / STD_BGR
    return a.transpose(2, 0, 1)[None].copy()


def nanodet_outputs(sess):
    """Map output names to (kind, stride) by their shapes: [1,N,80] scores, [1,N,44] boxes."""
    by = {}
    for o in sess.get_outputs():
        n = o.shape[1]
        stride = {2704: 8, 676: 16, 169: 32}[n]
        kind = "scores" if o.shape[2] == 80 else "boxes"
        by[(kind, stride)] = o.name
    return by


def nanodet_detect(sess, img: Image.Image, thr=0.4, iou=0.45):
    w, h = img.size
    names = nanodet_outputs(sess)
    outs = sess.run(None, {sess.get_inputs()[0].name: nanodet_input(img)})
    res = dict(zip([o.name for o in sess.get_outputs()], outs))
    dets = []
    for s in STRIDES:
        sc = res[names[("scores", s)]][0]
        bx = res[names[("boxes", s)]][0]
        cols = 416 // s
        idx = np.where(sc[:, 0] > thr)[0]
        for i in idx:
            r, c = divmod(i, cols)
            cx, cy = (c + 0.5) * s, (r + 0.5) * s
            d = bx[i].reshape(4, 11)
            p = np.exp(d - d.max(axis=1, keepdims=True))
            p /= p.sum(axis=1, keepdims=True)
            l, t, rr, b = (p * np.arange(11)).sum(axis=1) * s
            dets.append([(cx - l) * w / 416, (cy - t) * h / 416, (cx + rr) * w / 416, (cy + b) * h / 416, sc[i, 0]])
    dets.sort(key=lambda d: -d[4])
    keep = []
    for d in dets:
        if all(box_iou(d, k) <= iou for k in keep):
            keep.append(d)
    return keep


def box_iou(a, b):
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    u = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / u if u > 0 else 0.0


def retinaface_detect(sess, img: Image.Image, thr=0.5):
    """RGB 0-255 NHWC, padded to multiples of 32; rows: box(4) + landmarks(10) normalised to the
    padded input (x,y order), score in column 15."""
    a = np.asarray(img.convert("RGB"), dtype=np.float32)
    h, w = a.shape[:2]
    ph, pw = (h + 31) // 32 * 32, (w + 31) // 32 * 32
    pad = np.zeros((ph, pw, 3), np.float32)
    pad[:h, :w] = a
    out = sess.run(None, {"x:0": pad[None]})[0]
    faces = []
    for row in out:
        if row[15] < thr:
            continue
        faces.append([row[0] * pw, row[1] * ph, row[2] * pw, row[3] * ph, row[15]])
    return faces


def mask_input(img: Image.Image, box, margin=0.0):
    x1, y1, x2, y2 = box[:4]
    bw, bh = x2 - x1, y2 - y1
    crop = img.convert("RGB").crop((x1 - margin * bw, y1 - margin * bh, x2 + margin * bw, y2 + margin * bh))
    a = np.asarray(crop.resize((224, 224), Image.BILINEAR), dtype=np.float32) / 127.5 - 1.0
    return a[None]
