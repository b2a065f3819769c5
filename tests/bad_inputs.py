"""The hostile-input corpus of issue 15: a compact description, expanded into files at test time.

Every :class:`Case` is one bad input to one entry point: the files it needs
(built here from a few valid bases with one defect each), the command line,
the class of the issue it belongs to (1 silent wrong results ... 10 nonsense
accepted) and a word the one stderr line must contain (the file, field or
flag at fault).  ``tests/test_bad_inputs.py`` runs them; ``python
tests/bad_inputs.py DIR`` writes every case's files into ``DIR/<case id>/``
with its command line in ``cmd.txt``, for a look by hand.

Nothing binary is committed: files are built from these descriptions (the
model bases with numpy's own ``savez``, not with nnhdl, so the inputs do not
depend on the code under test).
"""

from __future__ import annotations

import io
import json
import pickle
import struct
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from soc.registers import REGISTERS

ROOT = Path(__file__).resolve().parents[1]

# -- valid bases ----------------------------------------------------------------

#: A small valid model (3 in -> 1 out, two layers): every entry point accepts it.
BASE_MANIFEST: dict[str, Any] = {
    "format": "nnhdl-model", "version": 1, "qformat": {"width": 16, "frac": 12}, "rounding": "floor",
    "input_dim": 3, "output_dim": 1, "sample_rate": 48000,
    "layers": [
        {"kind": "qb", "kernel_size": 2, "dilation": 2, "in_dim": 3, "out_dim": 4, "activation": "relu",
         "relu_max": None},
        {"kind": "qb", "kernel_size": 1, "dilation": 1, "in_dim": 4, "out_dim": 1, "activation": "none",
         "relu_max": None},
    ],
    "meta": {"name": "corpus", "trained_by": "tests/bad_inputs.py"},
}


def _base_arrays() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(15)
    return {
        "layer0.weight": rng.integers(-2000, 2000, size=(2, 3, 4)).astype(np.int32),
        "layer0.bias": rng.integers(-200, 200, size=(4,)).astype(np.int32),
        "layer1.weight": rng.integers(-2000, 2000, size=(1, 4, 1)).astype(np.int32),
        "layer1.bias": np.array([7], dtype=np.int32),
    }


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def model(manifest: Callable[[dict], Any] | None = None, arrays: Callable[[dict], Any] | None = None,
          manifest_text: str | None = None) -> bytes:
    """The base model with one edit of its manifest (a function of the dict) and/or its arrays."""
    m = json.loads(json.dumps(BASE_MANIFEST))
    if manifest is not None:
        manifest(m)
    a = _base_arrays()
    if arrays is not None:
        arrays(a)
    a = {"manifest": np.array(manifest_text if manifest_text is not None else json.dumps(m)), **a}
    return npz_bytes(a)


def layer(n: int, **changes: Any) -> Callable[[dict], None]:
    def edit(m: dict) -> None:
        m["layers"][n].update(changes)
    return edit


def top(**changes: Any) -> Callable[[dict], None]:
    def edit(m: dict) -> None:
        m.update(changes)
    return edit


def arr(name: str, value: np.ndarray) -> Callable[[dict], None]:
    def edit(a: dict) -> None:
        a[name] = value
    return edit


def set_value(name: str, value: Any, dtype: Any) -> Callable[[dict], None]:
    """Array ``name`` cast to ``dtype`` with its first element set to ``value`` (in that dtype)."""
    def edit(a: dict) -> None:
        x = a[name].astype(dtype)
        x.flat[0] = value
        a[name] = x
    return edit


def samples(values: Any = None, dtype: Any = np.int16, shape: tuple[int, ...] = (8, 3)) -> bytes:
    x = np.zeros(shape, dtype=dtype) if values is None else np.asarray(values, dtype=dtype)
    if values is None:
        x[:, 0] = (np.arange(shape[0]) * 100).astype(dtype) if shape[0] else 0
    buf = io.BytesIO()
    np.save(buf, x)
    return buf.getvalue()


def wav(data: np.ndarray, rate: int = 48000) -> bytes:
    from scipy.io import wavfile

    buf = io.BytesIO()
    wavfile.write(buf, rate, data)
    return buf.getvalue()


def recording(core_nan: bool = False, n: int = 6000) -> bytes:
    """A 2-channel float WAV: core triangle + one target (the sine corner)."""
    t = np.arange(n)
    phase = (t * 200.0 / 48000) % 1.0
    core = 0.3 * (1 - 4 * np.abs(phase - 0.5))
    target = -0.3 * np.cos(2 * np.pi * phase)
    data = np.stack([core, target], axis=1).astype(np.float32)
    if core_nan:
        data[100, 0] = np.nan
    return wav(data)


SIDECAR = {"core": 0, "targets": [{"channel": 1, "corner": [-1, -1]}]}
CONFIG = {"name": "tiny", "input_dim": 3, "sample_rate": 48000,
          "layers": [{"kernel_size": 2, "dilation": 1, "out_dim": 4}, {"kernel_size": 1, "out_dim": 1,
                                                                        "activation": "none"}]}
CAL = {"adc": [[0, 1024]] * 4, "dac": [[0, 1024]] * 4}
LAYER_INFO = [{"type": "qb", "id": "c0"}, {"type": "relu"}, {"type": "dilation", "amount": 2, "depth": 4},
              {"type": "qb", "id": "c1"}]


def qk_weights() -> dict[str, dict[str, list[np.ndarray]]]:
    """A qkeras weight dict: values are exact Q4.12 mantissas / 4096."""
    rng = np.random.default_rng(3)
    return {"c0": {"weights": [rng.integers(-800, 800, (1, 3, 4)) / 4096.0, rng.integers(-80, 80, (4,)) / 4096.0]},
            "c1": {"weights": [rng.integers(-800, 800, (2, 4, 1)) / 4096.0, np.zeros(1)]}}


def qk_pickle(edit: Callable[[dict], None] | None = None) -> bytes:
    w = qk_weights()
    if edit is not None:
        edit(w)
    return pickle.dumps(w)


def qk_npz(edit: Callable[[dict], None] | None = None) -> bytes:
    arrays = {f"{k}/{p}": v["weights"][i] for k, v in qk_weights().items() for i, p in enumerate(("kernel", "bias"))}
    if edit is not None:
        edit(arrays)
    return npz_bytes(arrays)


def js(obj: Any) -> bytes:
    return json.dumps(obj).encode()


def nested(depth: int, inner: str = "0") -> str:
    return "[" * depth + inner + "]" * depth


def with_key(base: Any, path: tuple, value: Any) -> Any:
    """A deep copy of ``base`` with ``base[path...] = value``."""
    obj = json.loads(json.dumps(base))
    cur = obj
    for p in path[:-1]:
        cur = cur[p]
    cur[path[-1]] = value
    return obj


# -- zip and pickle forgeries ------------------------------------------------------

def forged_size_zip(declared: int = 3 << 30) -> bytes:
    """A valid model whose first member's central-directory entry claims ``declared`` bytes."""
    raw = bytearray(model())
    cd = raw.rfind(b"PK\x05\x06")
    start = struct.unpack("<I", raw[cd + 16: cd + 20])[0]
    struct.pack_into("<I", raw, start + 24, declared)  # uncompressed size of the first central entry
    return bytes(raw)


def zip_bomb(megabytes: int = 300) -> bytes:
    """A real zip bomb: a ``.npy`` member of ``megabytes`` of zeros, deflated to about a megabyte."""
    buf = io.BytesIO()
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<i4", "fortran_order": False,
                                                  "shape": (megabytes << 18,)})
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        z.writestr("manifest.npy", np.lib.format.MAGIC_PREFIX + b"")  # placeholder, replaced below
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        with z.open("layer0.weight.npy", "w", force_zip64=True) as f:
            f.write(header.getvalue())
            chunk = bytes(1 << 20)
            for _ in range(megabytes):
                f.write(chunk)
    return buf.getvalue()


def forged_npy_in_npz() -> bytes:
    """A model whose weight member's .npy header announces 10**11 elements but holds 24."""
    raw = model()
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(raw)) as zin, zipfile.ZipFile(out, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info)
            if info.filename == "layer0.weight.npy":
                h = io.BytesIO()
                np.lib.format.write_array_header_1_0(h, {"descr": "<i4", "fortran_order": False,
                                                         "shape": (100000, 100000, 10)})
                data = h.getvalue() + data[128:]
            zout.writestr(info, data)
    return out.getvalue()


def forged_npy() -> bytes:
    h = io.BytesIO()
    np.lib.format.write_array_header_1_0(h, {"descr": "<i2", "fortran_order": False, "shape": (10 ** 12, 3)})
    return h.getvalue() + bytes(48)


def huge_reconstruct_pickle() -> bytes:
    """373-byte-class pickle: numpy's _reconstruct asked for a 2**40-element array."""
    try:  # where numpy's own array pickles name it
        from numpy._core.multiarray import _reconstruct
    except ImportError:
        from numpy.core.multiarray import _reconstruct

    class Big:
        def __reduce__(self):
            return (_reconstruct, (np.ndarray, (1 << 40,), np.dtype("f8")))
    return pickle.dumps({"c0": {"weights": [Big(), Big()]}})


def evil_pickle() -> bytes:
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))
    return pickle.dumps({"c0": {"weights": [Evil(), 0]}})


# -- the serial stand-in ---------------------------------------------------------

#: nn_ registers of the stand-in board: name -> 32-bit words (LiteX csr.csv order).
CSR_REGS = tuple((r.name, r.words) for r in REGISTERS)
CSR_BASE = 0x800


def csr_csv() -> bytes:
    rows = ["csr_base,nn,0x00000800,,", ]
    addr = CSR_BASE
    for name, words in CSR_REGS:
        rows.append(f"csr_register,nn_{name},{addr:#010x},{words},rw")
        addr += 4 * words
    return ("\n".join(rows) + "\n").encode()


# -- cases -------------------------------------------------------------------------

CLASSES = {
    1: "silent wrong results", 2: "tiny files, huge cost", 3: "failed runs leave output behind",
    4: "tracebacks on output and build paths", 5: "tracebacks on malformed files around the model",
    6: "tracebacks on flag values", 7: "lost board mid-session", 8: "edge cases in targets",
    9: "misleading or multi-line messages", 10: "nonsense accepted silently",
}

Maker = Callable[[], bytes]


@dataclass(frozen=True)
class Case:
    """One bad input: ``python -m MODULE ARGS`` in a folder holding ``files``; refused naming ``names``."""

    id: str
    cls: int
    module: str
    args: tuple[str, ...]
    files: dict[str, Any] = field(default_factory=dict)  # relative path -> bytes | Maker | None (a folder)
    names: str = ""  # must appear in the one stderr line
    neighbour: str = ""  # key of the valid input of the same kind (see NEIGHBOURS)
    peer: str | None = None  # stand-in board behaviour for --port
    env: dict[str, str] = field(default_factory=dict)
    status: int = 2

    def materialise(self, d: Path) -> None:
        for rel, content in self.files.items():
            p = d / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            if content is None:
                p.mkdir(exist_ok=True)
                continue
            data = content() if callable(content) else content
            p.write_bytes(data if isinstance(data, bytes) else data.encode())


CASES: list[Case] = []


def add(cls: int, module: str, args: str | list[str], files: dict | None = None, names: str = "",
        neighbour: str = "", cid: str | None = None, **kw: Any) -> None:
    argv = tuple(args.split()) if isinstance(args, str) else tuple(args)
    cid = cid or f"c{cls}-{module.split('.')[-1]}-{'_'.join(a.lstrip('-') for a in argv if a.startswith('-'))[:40]}"
    n = sum(1 for c in CASES if c.id.startswith(cid))
    CASES.append(Case(f"{cid}-{n}" if n else cid, cls, module, argv, dict(files or {}), names, neighbour, **kw))


GOOD = {"m.npz": model, "x.npy": samples}
MODEL_READERS = (  # every entry point that reads a model file: (module, args with the model as m.npz)
    ("nnhdl", "info m.npz"),
    ("nnhdl", "run --model m.npz --input x.npy --output y.npy"),
    ("nnhdl", "synth m.npz --build-dir b"),
    ("boards.pmod", "build --model m.npz --build-dir b"),
    ("mcu.export", "--model m.npz --out fw"),
    ("mcu.check", "--model m.npz --no-arm --samples 8"),
)
MODEL_READERS_SLOW = (("training.evaluate", "--model m.npz --out rep --no-pictures --per-point 1 --length 64"),)


def model_case(cls: int, tag: str, content: Any, names: str, readers=MODEL_READERS, extra: dict | None = None) -> None:
    for module, args in readers:
        files = {"x.npy": samples, "m.npz": content, **(extra or {})}
        add(cls, module, args, files, names, "model", cid=f"c{cls}-{module.split('.')[-1]}-{args.split()[0]}-{tag}")


# 1. silent wrong results: values range-checked in their original dtype
for tag, name, value, dtype in (("u64max", "layer0.weight", 2 ** 64 - 1, np.uint64),
                                ("u64bias", "layer1.bias", 2 ** 64 - 1, np.uint64),
                                ("u32", "layer0.weight", 2 ** 32 - 1, np.uint32),
                                ("i64big", "layer0.weight", 2 ** 40, np.int64)):
    model_case(1, tag, model(arrays=set_value(name, value, dtype)), name.split(".")[0],
               readers=MODEL_READERS[:2] + MODEL_READERS[4:5])
model_case(1, "u64eval", model(arrays=set_value("layer0.weight", 2 ** 64 - 1, np.uint64)), "layer0",
           readers=MODEL_READERS_SLOW)
for tag, value, dtype in (("u64", 2 ** 64 - 1, np.uint64), ("u32", 2 ** 32 - 1, np.uint32), ("i64", -2 ** 40, np.int64),
                          ("u16", 40000, np.uint16), ("i32", -40000, np.int32)):
    for target in ("reference", "rtl", "c"):
        add(1, "nnhdl", f"run --model m.npz --input x.npy --output y.npy --target {target}",
            {"m.npz": model, "x.npy": samples(np.full((4, 3), value, dtype=dtype), dtype)}, "x.npy", "samples",
            cid=f"c1-run-{target}-input-{tag}")
for tag, edit, what in (("nan-po2", lambda w: w["c0"]["weights"][0].__setitem__((0, 0, 0), np.nan), "c0.kernel"),
                        ("nan-qb", lambda w: w["c1"]["weights"][0].__setitem__((0, 0, 0), np.nan), "c1.kernel"),
                        ("inf-bias", lambda w: w["c0"]["weights"][1].__setitem__(0, np.inf), "c0.bias")):
    info = LAYER_INFO if tag != "nan-po2" else with_key(LAYER_INFO, (0, "type"), "po2")
    add(1, "training.import_qkeras", "--weights w.pkl --layer-info i.json --out o.npz",
        {"w.pkl": qk_pickle(edit), "i.json": js(info)}, what, "qkeras", cid=f"c1-qkeras-{tag}")
    add(1, "training.import_qkeras", "--weights w.npz --layer-info i.json --out o.npz",
        {"w.npz": qk_npz(lambda a, tag=tag: a[{"nan-po2": "c0/kernel", "nan-qb": "c1/kernel", "inf-bias": "c0/bias"}[tag]]
                         .flat.__setitem__(0, np.inf if tag == "inf-bias" else np.nan)),
         "i.json": js(info)}, what, "qkeras", cid=f"c1-qkeras-npz-{tag}")
for tol in ("nan", "inf", "-1", "-inf"):
    add(1, "training.import_qkeras", f"--weights w.pkl --layer-info i.json --out o.npz --po2-tolerance {tol}",
        {"w.pkl": qk_pickle, "i.json": js(LAYER_INFO)}, "--po2-tolerance", "qkeras")
add(1, "nnhdl", "run --model m.npz --input nan.wav --output y.npy",
    {"m.npz": model, "nan.wav": lambda: wav(np.full((16, 3), np.nan, dtype=np.float32))}, "nan.wav", "wav")
add(1, "nnhdl", "run --model m.npz --input inf.wav --output y.wav",
    {"m.npz": model, "inf.wav": lambda: wav(np.full((16, 3), np.inf, dtype=np.float32))}, "inf.wav", "wav")
add(1, "training.train", "--config tiny.json --data rec --steps 1 --out o.npz --quiet",
    {"tiny.json": js(CONFIG), "rec/osc.wav": lambda: recording(core_nan=True), "rec/osc.json": js(SIDECAR)},
    "osc.wav", "recordings")
add(1, "training.train", "--config tiny.json --data rec --steps 1 --out o.npz --quiet",
    {"tiny.json": js(CONFIG), "rec/osc.wav": recording,
     "rec/osc.json": b'{"core": 0, "targets": [{"channel": 1, "corner": [NaN, -1]}]}'}, "osc.json", "recordings")
add(1, "training.evaluate", "--model m.npz --data rec --no-pictures --per-point 1 --length 64 --out rep",
    {"m.npz": model, "rec/osc.wav": lambda: recording(core_nan=True), "rec/osc.json": js(SIDECAR)},
    "osc.wav", "model")

# 2. tiny files, huge cost: documented limits, checked before allocating
for tag, edit, names in (("dil1e9", layer(0, dilation=10 ** 9), "dilation"),
                         ("dil70k", layer(0, dilation=70000), "dilation"),
                         ("ker1e6", layer(0, kernel_size=10 ** 6), "kernel_size"),
                         ("ker300", layer(0, kernel_size=300), "kernel_size"),
                         ("out1e6", layer(1, out_dim=10 ** 6), "out_dim"),
                         ("in1e9", top(input_dim=10 ** 9), "input_dim"),
                         ("layers300", lambda m: m.update(layers=m["layers"][:1] + [m["layers"][1]] * 299), "layers"),
                         ("cache", layer(0, kernel_size=200, dilation=60000), "cache")):
    model_case(2, tag, model(manifest=edit), names)
model_case(2, "dil1e9", model(manifest=layer(0, dilation=10 ** 9)), "dilation", readers=MODEL_READERS_SLOW)
for tag, maker, names in (("bomb", zip_bomb, "m.npz"), ("forged-size", forged_size_zip, "m.npz"),
                          ("forged-npy", forged_npy_in_npz, "layer0.weight")):
    model_case(2, tag, maker, names, readers=MODEL_READERS[:2] + MODEL_READERS[4:5])
for module, args in MODEL_READERS[:2] + MODEL_READERS[4:6]:
    add(2, module, args.replace("m.npz", "/dev/zero"), {"x.npy": samples}, "/dev/zero", "model",
        cid=f"c2-{module.split('.')[-1]}-{args.split()[0]}-devzero")
add(2, "nnhdl", "run --model m.npz --input /dev/zero --output y.npy", {"m.npz": model}, "/dev/zero", "samples")
add(2, "nnhdl", "run --model m.npz --input big.npy --output y.npy", {"m.npz": model, "big.npy": forged_npy},
    "big.npy", "samples")
add(2, "nnhdl", "run --model m.npz --input big.npy --output y.npy --target c",
    {"m.npz": model, "big.npy": forged_npy}, "big.npy", "samples")
add(2, "nnhdl", "run --model m.npz --input x.npy --output y.npy --target c",
    {"m.npz": model(manifest=layer(0, dilation=10 ** 9)), "x.npy": samples}, "dilation", "model")
add(2, "nnhdl", "run --model m.npz --input x.npy --output y.npy --target rtl",
    {"m.npz": model(manifest=layer(0, dilation=10 ** 9)), "x.npy": samples}, "dilation", "model")
for tag, cfg, names in (("ker1e6", with_key(CONFIG, ("layers", 0, "kernel_size"), 10 ** 6), "kernel_size"),
                        ("dil1e9", with_key(CONFIG, ("layers", 0, "dilation"), 10 ** 9), "dilation"),
                        ("out1e6", with_key(CONFIG, ("layers", 0, "out_dim"), 10 ** 6), "out_dim"),
                        ("layers", with_key(CONFIG, ("layers",), CONFIG["layers"][:1] * 300), "layers"),
                        ("in1e9", with_key(CONFIG, ("input_dim",), 10 ** 9), "input_dim")):
    add(2, "nnhdl", "init --config c.json --out m.npz", {"c.json": js(cfg)}, names, "config", cid=f"c2-init-{tag}")
    if tag in ("ker1e6", "dil1e9"):
        add(2, "training.train", "--config c.json --out m.npz --steps 1 --quiet", {"c.json": js(cfg)}, names,
            "config", cid=f"c2-train-{tag}")
add(2, "nnhdl", "init --config big.json --out m.npz",
    {"big.json": lambda: b'{"name": "' + b"x" * (2 << 20) + b'"}'}, "big.json", "config")
add(2, "nnhdl", "init --config /dev/zero --out m.npz", {}, "/dev/zero", "config")
add(2, "training.import_qkeras", "--weights w.pkl --layer-info i.json --out o.npz",
    {"w.pkl": huge_reconstruct_pickle, "i.json": js(LAYER_INFO)}, "w.pkl", "qkeras")
add(2, "training.import_qkeras", "--weights /dev/zero --layer-info i.json --out o.npz",
    {"i.json": js(LAYER_INFO)}, "/dev/zero", "qkeras")
add(2, "training.import_qkeras", "--weights w.pkl --layer-info /dev/zero --out o.npz",
    {"w.pkl": qk_pickle}, "/dev/zero", "qkeras")
add(2, "training.import_qkeras", "--weights w.npz --layer-info i.json --out o.npz",
    {"w.npz": lambda: zip_bomb(100), "i.json": js(LAYER_INFO)}, "w.npz", "qkeras")
add(2, "training.import_qkeras", "--weights w.pkl --layer-info i.json --out o.npz",
    {"w.pkl": qk_pickle, "i.json": js(with_key(LAYER_INFO, (2, "amount"), 10 ** 9))}, "amount", "qkeras")
add(2, "boards.pmod", "build --model m.npz --cal /dev/zero --build-dir b", {"m.npz": model}, "/dev/zero", "model")
add(2, "mcu.export", "--model m.npz --out fw", {"m.npz": model(manifest=lambda m: m.update(layers=[
    {"kind": "qb", "kernel_size": 2, "dilation": 60000, "in_dim": 3, "out_dim": 4, "activation": "relu",
     "relu_max": None}, m["layers"][1]]))}, "RAM", "model", cid="c2-export-ram-budget")

# 3. failed runs leave output behind
add(3, "nnhdl", "init --config c.json --out m.npz", {"c.json": js(with_key(CONFIG, ("name",), "\udc80"))},
    "c.json", "config")
add(3, "nnhdl", [b"init", b"--config", b"\xff.json", b"--out", b"m.npz"],  # an undecodable file name -> meta name
    {"\udcff.json": js({k: v for k, v in CONFIG.items() if k != "name"})}, "meta", "config", cid="c3-init-badname")
add(3, "training.train", "--config tiny.json --steps 1 --out m.npz --checkpoint f/c.npz --quiet",
    {"tiny.json": js(CONFIG), "f": b"a file"}, "--checkpoint", "config")
add(3, "training.train", "--config tiny.json --steps 1 --out m.npz --checkpoint ck --quiet",
    {"tiny.json": js(CONFIG), "ck": None}, "--checkpoint", "config")
add(3, "mcu.export", "--model m.npz --out fw", {"m.npz": model(manifest=lambda m: m["meta"].update(name="\udc80"))},
    "manifest", "model")
add(3, "mcu.export", "--model m.npz --out fw --board daisy-patch",
    {"m.npz": model(manifest=lambda m: m["meta"].update(name="\udc80"))}, "manifest", "model")
add(3, "training.evaluate", "--model m.npz --out rep --per-point 1 --length 64",
    {"m.npz": model(manifest=lambda m: m["meta"].update(loss_history=[["a", 1]]))}, "loss_history", "model")
add(3, "training.evaluate", "--model m.npz --out rep --per-point 1 --length 64",
    {"m.npz": model(manifest=lambda m: m["meta"].update(loss_history=[1, 2, 3]))}, "loss_history", "model")
add(3, "nnhdl", "run --model m.npz --input x.npy --output y.txt --target rtl --vcd t.vcd", GOOD, "y.txt", "samples")
add(3, "nnhdl", "run --model m.npz --input x.npy --output y.txt", GOOD, "y.txt", "samples")
add(3, "nnhdl", "run --model m.npz --input x.npy --output y.npy --target rtl --backend verilator --vcd t.vcd", GOOD,
    "--vcd", "samples")
for tag, pm in (("inputs-short", {"inputs": [0], "outputs": [0, None, None, None]}),
                ("outputs-bad", {"inputs": [0, 1, 2], "outputs": [5, None, None, None]}),
                ("inputs-str", {"inputs": ["a", 1, 2], "outputs": [0, None, None, None]}),
                ("inputs-bool", {"inputs": [True, 1, 2], "outputs": [0, None, None, None]}),
                ("not-object", [1, 2])):
    add(3, "boards.pmod", "build --model m.npz --build-dir b",
        {"m.npz": model(manifest=lambda m, pm=pm: m["meta"].update(pmod=pm))}, "pmod", "model",
        cid=f"c3-build-meta-pmod-{tag}")

# 4. tracebacks on output and build paths
for module, args, flag in (("nnhdl", "run --model m.npz --input x.npy --output out", "out"),
                           ("nnhdl", "init --out out", "out"),
                           ("training.train", "--config tiny.json --steps 1 --out out --quiet", "out"),
                           ("training.import_qkeras", "--weights w.pkl --layer-info i.json --out out", "out")):
    files = {**GOOD, "tiny.json": js(CONFIG), "w.pkl": qk_pickle, "i.json": js(LAYER_INFO), "out": None}
    add(4, module, args, files, flag, "config" if "train" in module else "model",
        cid=f"c4-{module.split('.')[-1]}-{args.split()[0]}-out-is-dir")
    files = {**files, "out": None, "f": b"x"}
    add(4, module, args.replace(" out", " f/out"), files, "f/out", "model",
        cid=f"c4-{module.split('.')[-1]}-{args.split()[0]}-out-under-file")
    add(4, module, args.replace(" out", " missing/out"), files, "missing", "model",
        cid=f"c4-{module.split('.')[-1]}-{args.split()[0]}-out-missing-dir")
    add(4, module, args.replace(" out", " /proc/1/out"), files, "/proc/1", "model",
        cid=f"c4-{module.split('.')[-1]}-{args.split()[0]}-out-proc")
for tag, vcd, files in (("missing", "nodir/t.vcd", {}), ("dir", "tdir", {"tdir": None}),
                        ("under-file", "f/t.vcd", {"f": b"x"}), ("proc", "/proc/1/t.vcd", {})):
    add(4, "nnhdl", f"run --model m.npz --input x.npy --output y.npy --target rtl --vcd {vcd}", {**GOOD, **files},
        vcd.split("/")[0] if tag != "proc" else "/proc/1", "samples", cid=f"c4-run-vcd-{tag}")
for module, args in (("nnhdl", "synth m.npz --build-dir {b}"), ("boards.pmod", "build --model m.npz --build-dir {b}"),
                     ("mcu.check", "--model m.npz --no-arm --samples 8 --build {b}"),
                     ("mcu.export", "--model m.npz --out {b}"),
                     ("training.evaluate", "--model m.npz --per-point 1 --length 64 --out {b}")):
    for tag, b in (("file", "f"), ("under-file", "f/x"), ("proc", "/proc/1/x")):
        add(4, module, args.format(b=b), {**GOOD, "f": b"x"}, b.split("/x")[0] if tag != "proc" else "/proc/1",
            "model", cid=f"c4-{module.split('.')[-1]}-build-{tag}")
for module, args in (("mcu.check", "--model m.npz --no-arm --samples 8"),
                     ("nnhdl", "run --model m.npz --input x.npy --output y.npy --target c")):
    add(4, module, args, {**GOOD, "f": b"x"}, "f/cache", "model", env={"NNHDL_CACHE": "f/cache"},
        cid=f"c4-{module.split('.')[-1]}-cache-under-file")
add(4, "boards.pmod", "build --flash-only --build-dir f", {"f": b"x"}, "f", "model")

# 5. tracebacks on malformed files around the model
DEEP = nested(100000)
for tag, text, names in (("deep", DEEP, "manifest"), ("deep-obj", '{"a":' * 5000 + "1" + "}" * 5000, "manifest"),
                         ("surrogate", json.dumps(BASE_MANIFEST).replace('"corpus"', '"\\udc80"'), "manifest"),
                         ("nan", json.dumps(BASE_MANIFEST).replace("48000", "NaN"), "manifest"),
                         ("dupkey", json.dumps(BASE_MANIFEST)[:-1] + ', "rounding": "nearest"}', "manifest"),
                         ("syntax", json.dumps(BASE_MANIFEST)[:-3], "manifest"),
                         ("list", "[1, 2]", "manifest")):
    model_case(5, tag, model(manifest_text=text), names,
               readers=MODEL_READERS[:2] + MODEL_READERS[4:6] + (("boards.pmod", "load-weights --model m.npz --port "
                                                                  "socket://127.0.0.1:1 --build-dir bd"),))
model_case(5, "surrogate", model(manifest_text=json.dumps(BASE_MANIFEST).replace('"corpus"', '"\\udc80"')),
           "manifest", readers=MODEL_READERS_SLOW)
model_case(5, "truncated", lambda: model()[:-40], "m.npz", readers=MODEL_READERS[:2] + MODEL_READERS[4:5])
model_case(5, "empty", b"", "m.npz", readers=MODEL_READERS[:1])
model_case(5, "pickled-member", lambda: npz_bytes({**{"manifest": np.array(json.dumps(BASE_MANIFEST))},
                                                   **_base_arrays(), "layer1.bias": np.array([None, 1], dtype=object)}),
           "layer1.bias", readers=MODEL_READERS[:2])
for tag, text in (("deep", DEEP.encode()), ("utf8", b'{"name": "\xff\xfe", "input_dim": 3}'),
                  ("surrogate", js(CONFIG).replace(b'"tiny"', b'"\\udc80"')), ("syntax", b'{"layers": ['),
                  ("list", b"[]"), ("dup", b'{"input_dim": 3, "input_dim": 4}'), ("empty", b"")):
    add(5, "nnhdl", "init --config c.json --out m.npz", {"c.json": text}, "c.json", "config", cid=f"c5-init-config-{tag}")
    if tag in ("deep", "utf8", "surrogate"):
        add(5, "training.train", "--config c.json --out m.npz --steps 1 --quiet", {"c.json": text}, "c.json", "config",
            cid=f"c5-train-config-{tag}")
for tag, text in (("deep", DEEP.encode()), ("utf8", b'{"adc": "\xff"}'), ("syntax", b'{"adc": '), ("list", b"[1]"),
                  ("short", js({"adc": [[0, 1024]] * 3, "dac": CAL["dac"]})),
                  ("float", js(with_key(CAL, ("adc", 0, 1), 1024.5)))):
    add(5, "boards.pmod", "build --model m.npz --cal cal.json --build-dir b", {"m.npz": model, "cal.json": text},
        "cal.json", "model", cid=f"c5-build-cal-{tag}")
for tag, text, names in (("deep", DEEP.encode(), "osc.json"), ("utf8", b'{"core": "\xff"}', "osc.json"),
                         ("str-channel", js(with_key(SIDECAR, ("targets", 0, "channel"), "1")), "channel"),
                         ("float-core", js(with_key(SIDECAR, ("core",), 0.5)), "core"),
                         ("no-targets", js({"core": 0}), "osc.json"),
                         ("corner-str", js(with_key(SIDECAR, ("targets", 0, "corner"), ["a", 1])), "corner"),
                         ("list", b"[]", "osc.json")):
    add(5, "training.train", "--config tiny.json --data rec --steps 1 --out o.npz --quiet",
        {"tiny.json": js(CONFIG), "rec/osc.wav": recording, "rec/osc.json": text}, names, "recordings",
        cid=f"c5-train-sidecar-{tag}")
add(5, "training.evaluate", "--model m.npz --data rec --no-pictures --per-point 1 --length 64 --out rep",
    {"m.npz": model, "rec/osc.wav": recording, "rec/osc.json": DEEP.encode()}, "osc.json", "model")
QK = {"w.pkl": qk_pickle}
for tag, info, names in (("amount-str", with_key(LAYER_INFO, (2, "amount"), "two"), "amount"),
                         ("amount-null", with_key(LAYER_INFO, (2, "amount"), None), "amount"),
                         ("amount-float", with_key(LAYER_INFO, (2, "amount"), 2.5), "amount"),
                         ("amount-zero", with_key(LAYER_INFO, (2, "amount"), 0), "amount"),
                         ("amount-neg", with_key(LAYER_INFO, (2, "amount"), -3), "amount"),
                         ("depth-str", with_key(LAYER_INFO, (2, "depth"), "x"), "depth"),
                         ("id-list", with_key(LAYER_INFO, (0, "id"), ["c0"]), "id"),
                         ("id-int", with_key(LAYER_INFO, (0, "id"), 0), "id"),
                         ("type-list", with_key(LAYER_INFO, (1, "type"), ["relu"]), "type"),
                         ("not-list", {"a": 1}, "i.json"),
                         ("entry-str", ["qb"], "i.json")):
    add(5, "training.import_qkeras", "--weights w.pkl --layer-info i.json --out o.npz", {**QK, "i.json": js(info)},
        names, "qkeras", cid=f"c5-qkeras-info-{tag}")
for tag, text in (("deep", DEEP.encode()), ("utf8", b'[{"type": "\xff"}]'), ("syntax", b"[{"), ("empty", b"")):
    add(5, "training.import_qkeras", "--weights w.pkl --layer-info i.json --out o.npz", {**QK, "i.json": text},
        "i.json", "qkeras", cid=f"c5-qkeras-info-{tag}")
for tag, maker, names in (
        ("str-weights", lambda: pickle.dumps({"c0": {"weights": ["a", "b"]}, "c1": qk_weights()["c1"]}), "c0"),
        ("none-weights", lambda: pickle.dumps({"c0": {"weights": None}}), "c0"),
        ("dict-weights", lambda: pickle.dumps({"c0": {"weights": [{"a": 1}, 1]}}), "c0"),
        ("list", lambda: pickle.dumps([1, 2]), "w.pkl"),
        ("evil", evil_pickle, "print"),
        ("garbage", lambda: b"\x80\x04garbage", "w.pkl"),
        ("truncated", lambda: qk_pickle()[:-20], "w.pkl"),
        ("deep", lambda: b"(" * 100000 + b"." , "w.pkl")):
    add(5, "training.import_qkeras", "--weights w.pkl --layer-info i.json --out o.npz",
        {"w.pkl": maker, "i.json": js(LAYER_INFO)}, names, "qkeras", cid=f"c5-qkeras-pkl-{tag}")
add(5, "training.import_qkeras", "--weights w.npz --layer-info i.json --out o.npz",
    {"w.npz": lambda: qk_npz(lambda a: a.update({"c0/kernel": np.array(["a", "b"])})), "i.json": js(LAYER_INFO)},
    "c0", "qkeras")
for cmd in ("status", "load-weights --model m.npz"):
    for tag, text, names in (("nonint", csr_csv().replace(b"0x00000818", b"zz"), "csr.csv"),
                             ("binary", bytes(range(256)) * 4, "csr.csv"),
                             ("short", csr_csv() + b"csr_register,nn_extra\n", "csr.csv"),
                             ("size", csr_csv().replace(b",2,rw", b",x,rw"), "csr.csv"),
                             ("empty", b"", "csr.csv"),
                             ("dir", None, "csr.csv")):
        add(5, "boards.pmod", f"{cmd} --port socket://127.0.0.1:{{port}} --build-dir bd",
            {"m.npz": model, "bd/csr.csv": text}, names, "board", peer="board",
            cid=f"c5-{cmd.split()[0]}-csr-{tag}")
for tag, text in (("syntax", b'{"model": '), ("list", b"[]"), ("no-model", b'{"x": 1}'),
                  ("model-list", b'{"model": []}'), ("deep", DEEP.encode()), ("utf8", b'{"model": "\xff"}'),
                  ("manifest-str", b'{"model": {"hardware_manifest": "x"}}'),
                  ("layers-int", b'{"model": {"hardware_manifest": {"layers": [1, 2]}}}')):
    add(5, "boards.pmod", "load-weights --model m.npz --port socket://127.0.0.1:{port} --build-dir bd",
        {"m.npz": model, "bd/csr.csv": csr_csv, "bd/report.json": text}, "report.json", "board", peer="board",
        cid=f"c5-load-weights-report-{tag}")


def checkpoint(state: Any) -> bytes:
    return npz_bytes({"state": np.array(json.dumps(state)), "leaf0": np.zeros(3)})


for tag, state in (("no-config", {"step": 1, "history": []}), ("list", [1]), ("config-str", {"config": "x"}),
                   ("deep", None)):
    content = (lambda: npz_bytes({"state": np.array(DEEP), "leaf0": np.zeros(1)})) if tag == "deep" else checkpoint(state)
    add(5, "training.train", "--config tiny.json --steps 1 --out m.npz --checkpoint ck.npz --resume --quiet",
        {"tiny.json": js(CONFIG), "ck.npz": content}, "ck.npz", "config", cid=f"c5-train-checkpoint-{tag}")

# 6. tracebacks on flag values
FLAGS = [
    ("nnhdl", "init --out m.npz --seed {v}", "--seed", ("-1", "x", str(2 ** 64))),
    ("nnhdl", "info m.npz --hw --clock-mhz {v}", "--clock-mhz", ("inf", "1e400", "x")),
    ("nnhdl", "info m.npz --hw --lanes {v}", "--lanes", ("x", "1,,2")),
    ("nnhdl", "info m.npz --hw --lanes={v}", "lanes", ("0", "-1", "1,2,3")),
    ("nnhdl", "run --model m.npz --input x.npy --output y.npy --target rtl --lanes={v}", "lanes", ("0", "-2")),
    ("mcu.export", "--model m.npz --out fw --ram-limit {v}", "--ram-limit", ("inf", "nan", "-5", "0", "1e400", "x")),
    ("mcu.export", "--model m.npz --out fw --flash-limit {v}", "--flash-limit", ("inf", "nan", "-1k", "0")),
    ("mcu.export", "--model m.npz --out fw --prefix {v}", "--prefix", ("9x", "a-b", "x" * 40)),
    ("mcu.check", "--model m.npz --no-arm --samples {v}", "--samples", (str(10 ** 12), "0", "-1", "x")),
    ("mcu.check", "--model m.npz --no-arm --qemu-samples {v}", "--qemu-samples", ("0", str(10 ** 12))),
    ("mcu.check", "--model m.npz --no-arm --seed {v}", "--seed", ("-1", str(2 ** 40))),
    ("training.train", "--config tiny.json --out m.npz --quiet --seed {v}", "--seed", ("-1",)),
    ("training.train", "--config tiny.json --out m.npz --quiet --checkpoint-every {v}", "--checkpoint-every", ("0", "-2")),
    ("training.train", "--config tiny.json --out m.npz --quiet --window {v}", "--window", ("10000000000",)),
    ("training.train", "--config tiny.json --out m.npz --quiet --lr {v}", "--lr", ("nan", "inf", "-1", "0")),
    ("training.train", "--config tiny.json --out m.npz --quiet --steps {v}", "--steps", ("0", str(10 ** 12))),
    ("training.train", "--config tiny.json --out m.npz --quiet --batch {v}", "--batch", ("0", str(10 ** 9))),
    ("training.train", "--config tiny.json --out m.npz --quiet --qat-from {v}", "--qat-from", ("-1",)),
    ("training.evaluate", "--model m.npz --out rep --per-point {v}", "--per-point", ("0", "-1", str(10 ** 9))),
    ("training.evaluate", "--model m.npz --out rep --length {v}", "--length", ("0", "-5", str(10 ** 12))),
    ("training.import_qkeras", "--weights w.pkl --layer-info i.json --out o.npz --width {v}", "--width", ("0", "99")),
    ("training.import_qkeras", "--weights w.pkl --layer-info i.json --out o.npz --frac {v}", "--frac", ("-1", "99")),
    ("training.import_qkeras", "--weights w.pkl --layer-info i.json --out o.npz --sample-rate {v}", "--sample-rate",
     ("0", "-48000", str(2 ** 40))),
    ("boards.pmod", "build --model m.npz --build-dir b --seed {v}", "--seed", ("-1", "x")),
    ("boards.pmod", "build --model m.npz --build-dir b --lanes {v}", "--lanes", ("0", "-3", "x")),
    ("boards.pmod", "status --port socket://127.0.0.1:1 --build-dir bd --baud {v}", "--baud", ("0", "-1", "x")),
    ("nnhdl", "synth m.npz --build-dir b --banks {v}", "--banks", ("3", "0")),
    ("nnhdl", "plan m.npz --banks {v}", "--banks", ("3", "0")),
]
for module, template, flag, values in FLAGS:
    for v in values:
        add(6, module, template.format(v=v).split(), {**GOOD, "tiny.json": js(CONFIG), "w.pkl": qk_pickle,
                                                      "i.json": js(LAYER_INFO)},
            flag, "model" if module != "training.train" else "config",
            cid=f"c6-{module.split('.')[-1]}-{flag.lstrip('-')}-{v[:12]}")
for tag, value in (("inf", "Infinity"), ("nan", "NaN"), ("float", "48000.5"), ("str", '"48000"'), ("zero", "0"),
                   ("huge", str(2 ** 40)), ("bool", "true")):
    text = json.dumps(CONFIG).replace("48000", value).encode()
    add(6, "nnhdl", "init --config c.json --out m.npz", {"c.json": text}, "sample_rate" if tag not in ("inf", "nan")
        else "c.json", "config", cid=f"c6-init-config-rate-{tag}")
    if tag in ("inf", "float"):
        add(6, "training.train", "--config c.json --out m.npz --steps 1 --quiet", {"c.json": text},
            "sample_rate" if tag == "float" else "c.json", "config", cid=f"c6-train-config-rate-{tag}")


# 7. lost board mid-session (a local socket stands in for the board's USB UART)
for peer in ("close", "close-after-1", "close-after-3", "silent"):
    add(7, "boards.pmod", "status --port socket://127.0.0.1:{port} --build-dir bd", {"bd/csr.csv": csr_csv},
        "127.0.0.1", "board", peer=peer, cid=f"c7-status-{peer}")
for peer in ("close", "close-after-2", "close-after-5", "close-after-7", "close-after-9", "close-after-12"):
    add(7, "boards.pmod", "load-weights --model m.npz --port socket://127.0.0.1:{port} --build-dir bd",
        {"m.npz": model, "bd/csr.csv": csr_csv}, "untouched" if peer not in ("close", "close-after-2") else "127.0.0.1",
        "board", peer=peer, cid=f"c7-load-weights-{peer}")
add(7, "boards.pmod", "status --port socket://127.0.0.1:1 --build-dir bd", {"bd/csr.csv": csr_csv}, "127.0.0.1",
    "board", cid="c7-status-nobody-listening")
add(7, "boards.pmod", "status --port /dev/nonexistent-tty --build-dir bd", {"bd/csr.csv": csr_csv}, "nonexistent",
    "board")

# 8. edge cases in targets
for tag, edit, names in (("rate-2e40", top(sample_rate=2 ** 40), "sample_rate"),
                         ("rate-2e32", top(sample_rate=2 ** 32), "sample_rate"),
                         ("rate-zero", top(sample_rate=0), "sample_rate"),
                         ("rate-neg", top(sample_rate=-48000), "sample_rate"),
                         ("out-70k", lambda m: (m["layers"][1].update(out_dim=70000), m.update(output_dim=70000)),
                          "out_dim")):
    arrays = (lambda a: a.update({"layer1.weight": np.zeros((1, 4, 70000), np.int32),
                                  "layer1.bias": np.zeros(70000, np.int32)})) if tag == "out-70k" else None
    for module, args in (("nnhdl", "info m.npz"), ("nnhdl", "run --model m.npz --input x.npy --output y.wav"),
                         ("nnhdl", "run --model m.npz --input x.npy --output y.wav --target rtl"),
                         ("mcu.export", "--model m.npz --out fw")):
        add(8, module, args, {"m.npz": model(manifest=edit, arrays=arrays), "x.npy": samples}, names, "model",
            cid=f"c8-{module.split('.')[-1]}-{args.split()[0]}-{tag}")
for tag, shape, dtype in (("3d", (2, 2, 3), np.int16), ("0d", (), np.int16), ("channels", (8, 2), np.int16),
                          ("float", (8, 3), np.float32), ("complex", (8, 3), np.complex64), ("bool", (8, 3), bool)):
    for target in ("reference", "rtl"):
        add(8, "nnhdl", f"run --model m.npz --input x.npy --output y.npy --target {target}",
            {"m.npz": model, "x.npy": samples(np.zeros(shape, dtype=dtype), dtype)}, "x.npy", "samples",
            cid=f"c8-run-{target}-input-{tag}")
add(8, "nnhdl", "run --model m.npz --input x.wav --output y.wav", {"m.npz": model,
                                                                    "x.wav": lambda: wav(np.zeros((8, 2), np.int16))},
    "x.wav", "wav")
add(8, "nnhdl", "run --model m.npz --input x.wav --output y.wav", {"m.npz": model, "x.wav": b"RIFF\x00\x00"},
    "x.wav", "wav")

# 9. misleading or multi-line messages
add(9, "mcu.export", "--model m.npz --out fw", {"m.npz": model(manifest=layer(0, dilation=10 ** 9))}, "dilation",
    "model", cid="c9-export-dil1e9")
add(9, "mcu.export", "--model m.npz --out fw --ram-limit 1", {"m.npz": model}, "RAM", "model")
add(9, "mcu.export", "--model m.npz --out fw --flash-limit 64", {"m.npz": model}, "flash", "model")
add(9, "training.import_qkeras", "--weights w.pkl --layer-info i.json --out o.npz",
    {"w.pkl": qk_pickle(lambda w: w["c1"]["weights"][0].__setitem__((0, 0, 0), np.nan)), "i.json": js(LAYER_INFO)},
    "nan", "qkeras", cid="c9-qkeras-nan-named")
for peer in ("garbage", "garbage-ff", "bank-5"):
    add(9, "boards.pmod", "load-weights --model m.npz --port socket://127.0.0.1:{port} --build-dir bd",
        {"m.npz": model, "bd/csr.csv": csr_csv}, "active_bank", "board", peer=peer, cid=f"c9-load-weights-{peer}")
add(9, "boards.pmod", "load-weights --model m.npz --port socket://127.0.0.1:{port} --build-dir bd",
    {"m.npz": model(manifest=layer(0, dilation=3)), "bd/csr.csv": csr_csv}, "resynthesis", "board", peer="board",
    cid="c9-load-weights-other-shape")

# 10. nonsense accepted silently
for v in ("0", "-5", "nan", "-inf"):
    add(10, "nnhdl", f"info m.npz --hw --clock-mhz {v}", GOOD, "--clock-mhz", "model", cid=f"c10-info-clock-{v}")
for v in ("0", "-1", "nan", "1000"):
    add(10, "boards.pmod", f"build --model m.npz --build-dir b --sys-clock-mhz {v}", GOOD, "--sys-clock-mhz", "model",
        cid=f"c10-build-sysclock-{v}")
for flag in ("--sample-rate 0", "--window 0", "--sample-rate -1", "--batch -1"):
    add(10, "training.train", f"--config tiny.json --out m.npz --quiet {flag}", {"tiny.json": js(CONFIG)},
        flag.split()[0], "config")
add(10, "boards.pmod", "build --model m.npz --build-dir b --flash --flash-only", GOOD, "--flash", "model")
for tag, v in (("true", True), ("false", False), ("str", "0"), ("null", None)):
    add(10, "boards.pmod", "build --model m.npz --cal cal.json --build-dir b",
        {"m.npz": model, "cal.json": js(with_key(CAL, ("adc", 0, 0), v))}, "cal.json", "model", cid=f"c10-cal-{tag}")
add(10, "boards.pmod", "build --model m.npz --cal cal.json --build-dir b",
    {"m.npz": model, "cal.json": js({**CAL, "gain": 2})}, "gain", "model", cid="c10-cal-unknown-key")
for tag, edit, names in (("rate-frac", top(sample_rate=48000.5), "sample_rate"),
                         ("width-frac", lambda m: m["qformat"].update(width=16.0), "width"),
                         ("dil-frac", layer(0, dilation=2.5), "dilation"),
                         ("ker-str", layer(0, kernel_size="2"), "kernel_size"),
                         ("ker-bool", layer(1, kernel_size=True), "kernel_size"),
                         ("unknown-top", top(sampel_rate=1), "sampel_rate"),
                         ("unknown-layer", layer(0, dilatoin=1), "dilatoin"),
                         ("unknown-qformat", lambda m: m["qformat"].update(signed=True), "signed"),
                         ("relu-max-float", layer(0, relu_max=1.5), "relu_max"),
                         ("relu-max-bool", layer(0, relu_max=True), "relu_max")):
    model_case(10, tag, model(manifest=edit), names, readers=MODEL_READERS[:2] + MODEL_READERS[4:5])
for tag, arrays, names in (("complex", arr("layer0.weight", np.ones((2, 3, 4), np.complex64)), "layer0.weight"),
                           ("float", arr("layer0.bias", np.ones(4, np.float32)), "layer0.bias"),
                           ("bool", arr("layer0.bias", np.ones(4, bool)), "layer0.bias"),
                           ("extra", lambda a: a.update({"layer9.weight": np.zeros(1, np.int32)}), "layer9")):
    model_case(10, tag, model(arrays=arrays), names, readers=MODEL_READERS[:2])
add(10, "training.import_qkeras", "--weights w.pkl --layer-info i.json --out o.npz",
    {"w.pkl": qk_pickle(lambda w: w["c0"]["weights"].__setitem__(0, w["c0"]["weights"][0] * (1 + 1j))),
     "i.json": js(LAYER_INFO)}, "complex", "qkeras", cid="c10-qkeras-complex")
add(10, "training.import_qkeras", "--weights w.pkl --layer-info i.json --out o.npz",
    {"w.pkl": qk_pickle, "i.json": js(with_key(LAYER_INFO, (0, "idd"), 1))}, "idd", "qkeras", cid="c10-qkeras-unknown")
for tag, cfg, names in (("unknown-top", {**CONFIG, "layerz": []}, "layerz"),
                        ("unknown-layer", with_key(CONFIG, ("layers", 0, "dilaton"), 2), "dilaton"),
                        ("dil-frac", with_key(CONFIG, ("layers", 0, "dilation"), 2.5), "dilation"),
                        ("width-frac", {**CONFIG, "qformat": {"width": 16.5, "frac": 12}}, "width"),
                        ("width-str", {**CONFIG, "qformat": {"width": "16", "frac": 12}}, "width")):
    add(10, "nnhdl", "init --config c.json --out m.npz", {"c.json": js(cfg)}, names, "config",
        cid=f"c10-init-config-{tag}")
add(10, "training.train", "--config tiny.json --data rec --steps 1 --out o.npz --quiet",
    {"tiny.json": js(CONFIG), "rec/osc.wav": recording,
     "rec/osc.json": js({**SIDECAR, "gain": 1})}, "gain", "recordings", cid="c10-train-sidecar-unknown")
for peer in ("garbage", "garbage-ff", "bank-5"):
    add(10, "boards.pmod", "status --port socket://127.0.0.1:{port} --build-dir bd", {"bd/csr.csv": csr_csv},
        "the board answered", "board", peer=peer, cid=f"c10-status-{peer}")


# -- valid neighbours: one cheap valid input per kind, through an entry point reading that kind ----------------

@dataclass(frozen=True)
class Neighbour:
    module: str
    args: tuple[str, ...]
    files: dict[str, Any]
    peer: str | None = None
    creates: tuple[str, ...] = ()  # outputs that must exist afterwards


NEIGHBOURS: dict[str, list[Neighbour]] = {
    "model": [
        Neighbour("nnhdl", ("info", "m.npz"), {"m.npz": model}),
        Neighbour("nnhdl", tuple("info m.npz --hw --clock-mhz 0.5".split()), {"m.npz": model}),
        Neighbour("mcu.export", tuple("--model m.npz --out fw --ram-limit 1M".split()),
                  {"m.npz": model(manifest=lambda m: m["meta"].update(name="a */ b\nc"))},
                  creates=("fw/nnhdl_model.c",)),
        Neighbour("mcu.check", tuple("--model m.npz --no-arm --samples 8 --build bld".split()), {"m.npz": model}),
        Neighbour("training.evaluate", tuple("--model m.npz --out rep --per-point 1 --length 64".split()),
                  {"m.npz": model}, creates=("rep/m.md", "rep/m_waveforms.png")),
    ],
    "samples": [
        Neighbour("nnhdl", tuple("run --model m.npz --input x.npy --output y.npy".split()), GOOD, creates=("y.npy",)),
        Neighbour("nnhdl", tuple("run --model m.npz --input x.npy --output y.npy --target rtl --vcd t.vcd".split()),
                  {"m.npz": model, "x.npy": samples(np.zeros((0, 3), np.int16))}, creates=("y.npy",)),
        Neighbour("nnhdl", tuple("run --model m.npz --input x.npy --output y.npy --target rtl --vcd t.vcd".split()),
                  GOOD, creates=("y.npy", "t.vcd")),
        Neighbour("nnhdl", tuple("run --model m.npz --input x.npy --output y.npy --target c".split()),
                  {"m.npz": model, "x.npy": samples(np.full((4, 3), 2047, np.uint64), np.uint64)}, creates=("y.npy",)),
    ],
    "wav": [Neighbour("nnhdl", tuple("run --model m.npz --input x.wav --output y.wav".split()),
                      {"m.npz": model, "x.wav": lambda: wav(np.full((16, 3), 0.25, np.float32))}, creates=("y.wav",))],
    "config": [Neighbour("nnhdl", tuple("init --config c.json --out m.npz --seed 4294967295".split()),
                         {"c.json": js(CONFIG)}, creates=("m.npz",)),
               Neighbour("training.train", tuple("--config c.json --steps 2 --batch 2 --out m.npz --quiet".split()),
                         {"c.json": js(CONFIG)}, creates=("m.npz", "runs/m.ckpt.npz"))],
    "recordings": [Neighbour("training.train", tuple("--config c.json --data rec --steps 2 --batch 2 --out m.npz "
                                                     "--quiet --checkpoint ck.npz".split()),
                             {"c.json": js(CONFIG), "rec/osc.wav": recording, "rec/osc.json": js(SIDECAR)},
                             creates=("m.npz", "ck.npz"))],
    "qkeras": [Neighbour("training.import_qkeras", tuple("--weights w.pkl --layer-info i.json --out o.npz".split()),
                         {"w.pkl": qk_pickle, "i.json": js(LAYER_INFO)}, creates=("o.npz",)),
               Neighbour("training.import_qkeras", tuple("--weights w.npz --layer-info i.json --out o.npz".split()),
                         {"w.npz": qk_npz, "i.json": js(LAYER_INFO)}, creates=("o.npz",)),
               Neighbour("training.import_qkeras", tuple("--weights w.pkl --layer-info i.json --out o.npz "
                                                         "--po2-tolerance 0.5".split()),
                         {"w.pkl": qk_pickle, "i.json": js(with_key(LAYER_INFO, (0, "type"), "po2"))},
                         creates=("o.npz",))],
    "board": [Neighbour("boards.pmod", ("status", "--port", "socket://127.0.0.1:{port}", "--build-dir", "bd"),
                        {"bd/csr.csv": csr_csv}, peer="board"),
              Neighbour("boards.pmod", ("load-weights", "--model", "m.npz", "--port", "socket://127.0.0.1:{port}",
                                        "--build-dir", "bd"), {"m.npz": model, "bd/csr.csv": csr_csv}, peer="board")],
}


def main(argv: list[str]) -> int:
    """Write every case's files to ``DIR/<id>/`` (and its command line to ``cmd.txt``)."""
    if len(argv) != 1:
        print("usage: python tests/bad_inputs.py DIR", file=sys.stderr)
        return 2
    out = Path(argv[0])
    for c in CASES:
        d = out / c.id
        d.mkdir(parents=True, exist_ok=True)
        c.materialise(d)
        (d / "cmd.txt").write_text(f"[class {c.cls}] python -m {c.module} "
                                   + " ".join(a if isinstance(a, str) else a.decode(errors="replace") for a in c.args)
                                   + "\n")
    print(f"{len(CASES)} cases in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
