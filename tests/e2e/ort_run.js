// tests/e2e/ort_run.js - runs an ONNX model in ONNX Runtime (npm
// onnxruntime-node) on TensorProto input files and writes output_N.pb, the
// ONNX test-data layout, so that its results can be compared with `graft run`.
//
//   node ort_run.js MODEL OUT_DIR input_0.pb [input_1.pb ...]
//
// Needs NODE_PATH (or the current folder) to reach onnxruntime-node. Holds a
// minimal TensorProto reader/writer: dims, data_type, name, raw_data and the
// typed data fields.
'use strict';
const fs = require('fs');
const path = require('path');
const ort = require('onnxruntime-node');

function readVarint(buf, pos) {
    let result = 0n, shift = 0n;
    for (;;) {
        if (pos >= buf.length) throw new Error('truncated varint');
        const b = buf[pos++];
        result |= BigInt(b & 0x7f) << shift;
        if (!(b & 0x80)) break;
        shift += 7n;
    }
    return [result, pos];
}

const TYPES = { // data_type -> [ort type, TypedArray, bytes]
    1: ['float32', Float32Array, 4], 2: ['uint8', Uint8Array, 1], 3: ['int8', Int8Array, 1],
    6: ['int32', Int32Array, 4], 7: ['int64', BigInt64Array, 8], 9: ['bool', Uint8Array, 1],
    10: ['float16', Uint16Array, 2], 11: ['float64', Float64Array, 8],
};

function parseTensor(buf) {
    const t = { dims: [], dataType: 0, name: '', raw: null, floats: [], ints: [], int64s: [], doubles: [] };
    let pos = 0;
    while (pos < buf.length) {
        let key;
        [key, pos] = readVarint(buf, pos);
        const field = Number(key >> 3n), wire = Number(key & 7n);
        if (wire === 0) {
            let v;
            [v, pos] = readVarint(buf, pos);
            if (field === 1) t.dims.push(Number(BigInt.asIntN(64, v)));
            else if (field === 2) t.dataType = Number(v);
            else if (field === 5) t.ints.push(Number(BigInt.asIntN(32, v)));
            else if (field === 7) t.int64s.push(BigInt.asIntN(64, v));
        } else if (wire === 2) {
            let len;
            [len, pos] = readVarint(buf, pos);
            const end = pos + Number(len);
            if (end > buf.length) throw new Error('truncated field');
            const body = buf.subarray(pos, end);
            if (field === 8) t.name = body.toString('utf8');
            else if (field === 9) t.raw = Buffer.from(body);
            else if (field === 4) for (let i = 0; i + 4 <= body.length; i += 4) t.floats.push(body.readFloatLE(i));
            else if (field === 10) for (let i = 0; i + 8 <= body.length; i += 8) t.doubles.push(body.readDoubleLE(i));
            else if (field === 1 || field === 5 || field === 7) {
                let p = 0;
                while (p < body.length) {
                    let v;
                    [v, p] = readVarint(body, p);
                    if (field === 1) t.dims.push(Number(BigInt.asIntN(64, v)));
                    else if (field === 5) t.ints.push(Number(BigInt.asIntN(32, v)));
                    else t.int64s.push(BigInt.asIntN(64, v));
                }
            }
            pos = end;
        } else if (wire === 5) {
            if (field === 4) t.floats.push(buf.readFloatLE(pos));
            pos += 4;
        } else if (wire === 1) {
            if (field === 10) t.doubles.push(buf.readDoubleLE(pos));
            pos += 8;
        } else {
            throw new Error('unsupported wire type ' + wire);
        }
    }
    const ty = TYPES[t.dataType];
    if (!ty) throw new Error('unsupported data_type ' + t.dataType);
    const n = t.dims.reduce((a, b) => a * b, 1);
    let data;
    if (t.raw) {
        const copy = new Uint8Array(t.raw); // aligned copy
        data = new ty[1](copy.buffer, 0, n);
    } else if (t.dataType === 1) data = Float32Array.from(t.floats);
    else if (t.dataType === 11) data = Float64Array.from(t.doubles);
    else if (t.dataType === 7) data = BigInt64Array.from(t.int64s);
    else data = ty[1].from(t.ints); // int32_data holds int32/int8/uint8/bool/float16 bits
    if (data.length !== n) throw new Error(`expected ${n} elements, found ${data.length}`);
    return new ort.Tensor(ty[0], data, t.dims);
}

function varint(v) {
    let x = BigInt.asUintN(64, BigInt(v));
    const out = [];
    do {
        let b = Number(x & 0x7fn);
        x >>= 7n;
        if (x) b |= 0x80;
        out.push(b);
    } while (x);
    return Buffer.from(out);
}

function serializeTensor(name, tensor) {
    const code = Object.keys(TYPES).find(k => TYPES[k][0] === tensor.type);
    if (!code) throw new Error('cannot store ' + tensor.type);
    const parts = [];
    for (const d of tensor.dims) parts.push(varint(1 << 3), varint(d));
    parts.push(varint(2 << 3), varint(Number(code)));
    const nameBuf = Buffer.from(name, 'utf8');
    parts.push(varint((8 << 3) | 2), varint(nameBuf.length), nameBuf);
    const d = tensor.data;
    const raw = Buffer.from(d.buffer, d.byteOffset, d.byteLength);
    parts.push(varint((9 << 3) | 2), varint(raw.length), raw);
    return Buffer.concat(parts);
}

async function main() {
    const [model, outDir, ...inputs] = process.argv.slice(2);
    if (!model || !outDir) {
        console.error('usage: node ort_run.js MODEL OUT_DIR input_0.pb ...');
        process.exit(2);
    }
    const opts = { intraOpNumThreads: 2, interOpNumThreads: 1, graphOptimizationLevel: 'all',
                   logSeverityLevel: 3 };
    const session = await ort.InferenceSession.create(model, opts);
    if (inputs.length !== session.inputNames.length)
        throw new Error(`${model} has ${session.inputNames.length} inputs, ${inputs.length} given`);
    const feeds = {};
    session.inputNames.forEach((n, i) => { feeds[n] = parseTensor(fs.readFileSync(inputs[i])); });
    const results = await session.run(feeds);
    fs.mkdirSync(outDir, { recursive: true });
    session.outputNames.forEach((n, i) => {
        fs.writeFileSync(path.join(outDir, `output_${i}.pb`), serializeTensor(n, results[n]));
    });
}

main().catch(e => { console.error('ort_run: ' + e.message); process.exit(1); });
