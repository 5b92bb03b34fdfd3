"""Static int8 QDQ quantisation of NanoDet: Conv only, per-channel (FACTS.md: quantising every op
type gave 0 detections), calibrated on frames of real pedestrian footage, never on the test images."""
import glob
import sys

import numpy as np
from PIL import Image
from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType,
                                      quantize_static)

from common import nanodet_input


class Frames(CalibrationDataReader):
    def __init__(self, paths, input_name):
        self.it = iter(paths)
        self.input_name = input_name

    def get_next(self):
        p = next(self.it, None)
        return None if p is None else {self.input_name: nanodet_input(Image.open(p))}


def main(src, dst, frames_dir):
    paths = sorted(glob.glob(frames_dir + "/*.jpg"))
    if len(paths) < 50:
        sys.exit(f"quantize: need at least 50 calibration frames in {frames_dir}, found {len(paths)}")
    print(f"quantize: calibrating on {len(paths)} frames from {frames_dir}")
    quantize_static(src, dst, Frames(paths, "input_1:0"), quant_format=QuantFormat.QDQ,
                    op_types_to_quantize=["Conv"], per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)


if __name__ == "__main__":
    main(*sys.argv[1:4])
