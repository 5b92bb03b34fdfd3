"""Read PyTorch checkpoints without PyTorch (numpy only), for models shipped as .pth / .pkl.

Both formats torch.save writes are read: the zip one (archive/data.pkl + archive/data/<key>) and
the legacy one (pickles one after another, then the raw storages). Tensors become numpy arrays;
any other class in the pickle becomes a `Stub` that keeps its constructor arguments and state
(enough to walk an nn.Module tree: `_modules`, `_parameters`, `_buffers` and its attributes).
"""
import collections
import io
import pickle
import struct
import zipfile

import numpy as np

DTYPES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
    "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16,
    "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_,
}


class Stub:
    """Any class of the pickle that is not a tensor: keeps what it was built from."""

    cls = "?"

    def __init__(self, *args, **kwargs):
        self.args, self.kwargs = args, kwargs

    def __setstate__(self, state):
        if isinstance(state, dict):
            self.__dict__.update(state)
        elif isinstance(state, tuple) and len(state) == 2 and isinstance(state[1], dict):
            if isinstance(state[0], dict):
                self.__dict__.update(state[0])
            self.__dict__.update(state[1])
        else:
            self.state = state

    def __call__(self, *args, **kwargs):
        return Stub(*args, **kwargs)

    def __repr__(self):
        return f"<{self.cls}>"


class _Lazy:
    """A storage whose bytes come later (legacy format) or from the zip."""

    def __init__(self, dtype, key):
        self.dtype, self.key, self.array = dtype, key, None


def _rebuild_tensor(storage, offset, size, stride, *rest):
    return ("tensor", storage, offset, tuple(size), tuple(stride))


def _rebuild_parameter(data, *rest):
    return data


class _Unpickler(pickle.Unpickler):
    def __init__(self, f, storages):
        super().__init__(f, encoding="latin1")
        self.storages = storages

    def find_class(self, module, name):
        if name in ("_rebuild_tensor_v2", "_rebuild_tensor"):
            return _rebuild_tensor
        if name == "_rebuild_parameter":
            return _rebuild_parameter
        if module == "torch" and name in DTYPES:
            return DTYPES[name]
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        if module in ("builtins", "__builtin__", "copy_reg", "copyreg", "numpy", "numpy.core.multiarray",
                      "numpy.core.numeric", "functools", "pathlib", "_codecs"):
            try:
                return super().find_class(module, name)
            except Exception:  # noqa: BLE001 - fall back to a stub
                pass
        return type(name, (Stub,), {"cls": f"{module}.{name}"})

    def persistent_load(self, pid):
        # ('module', class, source file, source) in the legacy format: the class itself
        if pid[0] == "module":
            return pid[1]
        # ('storage', storage_type, key, location, numel[, view_metadata])
        dtype, key = pid[1], str(pid[2])
        if key not in self.storages:
            self.storages[key] = _Lazy(dtype, key)
        return self.storages[key]


def _materialise(obj, seen=None):
    """Replace ("tensor", storage, ...) tuples by numpy arrays, everywhere in the object tree."""
    if seen is None:
        seen = set()
    if isinstance(obj, tuple) and len(obj) == 5 and obj[0] == "tensor" and isinstance(obj[1], _Lazy):
        _, st, off, size, stride = obj
        a = st.array
        item = a.itemsize
        return np.lib.stride_tricks.as_strided(a[off:], shape=size, strides=[s * item for s in stride]).copy()
    if id(obj) in seen:
        return obj
    seen.add(id(obj))
    if isinstance(obj, dict):
        for k in list(obj):
            obj[k] = _materialise(obj[k], seen)
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            obj[i] = _materialise(v, seen)
    elif isinstance(obj, tuple):
        return tuple(_materialise(v, seen) for v in obj)
    elif isinstance(obj, Stub):
        for k, v in list(obj.__dict__.items()):
            obj.__dict__[k] = _materialise(v, seen)
    return obj


def load(path):
    storages = {}
    if zipfile.is_zipfile(path):
        z = zipfile.ZipFile(path)
        pkl = next(n for n in z.namelist() if n.endswith("data.pkl"))
        prefix = pkl[: -len("data.pkl")]
        obj = _Unpickler(io.BytesIO(z.read(pkl)), storages).load()
        for key, st in storages.items():
            st.array = np.frombuffer(z.read(f"{prefix}data/{key}"), dtype=st.dtype)
    else:
        with open(path, "rb") as f:
            magic = pickle.load(f, encoding="latin1")
            if magic != 0x1950A86A20F9469CFC6C:
                raise ValueError(f"{path}: not a torch.save file")
            pickle.load(f, encoding="latin1")  # protocol version
            pickle.load(f, encoding="latin1")  # sys info
            obj = _Unpickler(f, storages).load()
            keys = pickle.load(f, encoding="latin1")
            for key in keys:
                st = storages[str(key)]
                (n,) = struct.unpack("<q", f.read(8))
                st.array = np.frombuffer(f.read(n * np.dtype(st.dtype).itemsize), dtype=st.dtype)
    return _materialise(obj)
