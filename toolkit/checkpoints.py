"""Read and write model weights: Google/bert4keras TF checkpoints, Hugging Face
safetensors / pytorch_model.bin files and directories, Keras ``.weights.h5``.

Readers hand out NumPy arrays by variable name, lazily (one tensor at a time),
so a converter's peak memory stays near one copy of the model. Writers go
through a temporary file in the destination directory and a rename, so an
interrupted write never leaves a truncated file behind.

Example:

>>> reader = open_checkpoint("uncased_L-12_H-768_A-12/bert_model.ckpt")  # doctest: +SKIP
>>> reader.format, reader.get("bert/embeddings/word_embeddings").shape  # doctest: +SKIP
('tf', (30522, 768))
"""

import contextlib
import difflib
import json
import os
import tempfile

import numpy as np

HF_WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)


class CheckpointError(ValueError):
    """A checkpoint is missing, unreadable, or does not fit the model."""


class CheckpointReader:
    """Common interface: ``format``, ``path``, ``keys()``, ``get(name)``, ``shape(name)``."""

    format = None

    def __init__(self, path):
        self.path = path

    def keys(self):
        raise NotImplementedError

    def get(self, name):
        raise NotImplementedError

    def shape(self, name):
        return tuple(self.get(name).shape)

    def __contains__(self, name):
        return name in self.keys()

    def missing(self, name, wanted_by=""):
        """A CheckpointError for a variable that is not there, with close names."""
        close = difflib.get_close_matches(name, list(self.keys()), n=3, cutoff=0.5)
        hint = f"; similar names: {close}" if close else ""
        by = f" (needed by {wanted_by})" if wanted_by else ""
        return CheckpointError(f"checkpoint '{self.path}' has no variable '{name}'{by}{hint}")


class TFCheckpointReader(CheckpointReader):
    """A TensorFlow checkpoint prefix (``bert_model.ckpt``) or its directory."""

    format = "tf"

    def __init__(self, path):
        try:
            import tensorflow as tf
        except ImportError as e:  # pragma: no cover - depends on the install
            raise CheckpointError(f"reading TF checkpoint '{path}' needs tensorflow installed") from e
        prefix = path
        if os.path.isdir(path):
            prefix = tf.train.latest_checkpoint(path)
            if prefix is None:
                raise CheckpointError(f"no TF checkpoint found in directory '{path}'")
        super().__init__(prefix)
        try:
            self._reader = tf.train.load_checkpoint(prefix)
        except Exception as e:
            raise CheckpointError(f"cannot read TF checkpoint '{prefix}': {e}") from e
        self._shapes = self._reader.get_variable_to_shape_map()

    def keys(self):
        return self._shapes.keys()

    def shape(self, name):
        if name not in self._shapes:
            raise self.missing(name)
        return tuple(self._shapes[name])

    def get(self, name):
        if name not in self._shapes:
            raise self.missing(name)
        return np.asarray(self._reader.get_tensor(name))


class HFCheckpointReader(CheckpointReader):
    """Hugging Face weights: a directory, ``*.safetensors``, ``*.bin``/``*.pt``,
    or a sharded ``*.index.json``. Tensors are read lazily, as float32 unless
    ``keep_dtype``."""

    format = "hf"

    def __init__(self, path, keep_dtype=False):
        super().__init__(path)
        self.keep_dtype = keep_dtype
        if os.path.isdir(path):
            for fname in HF_WEIGHT_FILES:
                if os.path.exists(os.path.join(path, fname)):
                    path = os.path.join(path, fname)
                    break
            else:
                raise CheckpointError(f"directory '{self.path}' has none of {list(HF_WEIGHT_FILES)}")
        if path.endswith(".index.json"):
            with open(path) as f:
                weight_map = json.load(f)["weight_map"]
            base = os.path.dirname(path)
            files = sorted(set(weight_map.values()))
            self._files = {fn: os.path.join(base, fn) for fn in files}
            self._where = {k: self._files[v] for k, v in weight_map.items()}
        else:
            self._where = None
            self._files = {os.path.basename(path): path}
        self._open = {}
        if self._where is None:
            self._where = {k: path for k in self._file_keys(path)}

    def _handle(self, file):
        if file not in self._open:
            if not os.path.exists(file):
                raise CheckpointError(f"weights file '{file}' does not exist")
            if file.endswith(".safetensors"):
                self._open[file] = ("safetensors", _open_safetensors(file))
            else:
                import torch

                try:
                    state = torch.load(file, map_location="cpu", weights_only=True, mmap=True)
                except Exception as e:
                    raise CheckpointError(f"cannot read torch weights '{file}': {e}") from e
                if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
                    state = state["state_dict"]
                self._open[file] = ("torch", state)
        return self._open[file]

    def _file_keys(self, file):
        _, handle = self._handle(file)
        return list(handle.keys())

    def keys(self):
        return self._where.keys()

    def get(self, name):
        if name not in self._where:
            raise self.missing(name)
        kind, handle = self._handle(self._where[name])
        tensor = handle.get_tensor(name) if kind == "safetensors" else handle[name]
        if not isinstance(tensor, np.ndarray):  # torch tensor
            import torch

            if not self.keep_dtype or tensor.dtype == torch.bfloat16:
                tensor = tensor.float()
            tensor = tensor.detach().cpu().numpy()
        elif not self.keep_dtype:
            tensor = tensor.astype(np.float32) if tensor.dtype.kind == "f" else tensor
        return tensor

    def shape(self, name):
        if name not in self._where:
            raise self.missing(name)
        kind, handle = self._handle(self._where[name])
        if kind == "safetensors":
            return tuple(handle.get_slice(name).get_shape())
        return tuple(handle[name].shape)


def check_safetensors_file(file):
    """Raise CheckpointError naming ``file`` unless its header parses and its size is
    exactly what the header describes (8-byte length, JSON header, tensor bytes): a
    truncated download or an interrupted copy is caught before any tensor is read."""
    size = os.path.getsize(file)
    with open(file, "rb") as handle:
        head = handle.read(8)
        header_len = int.from_bytes(head, "little") if len(head) == 8 else -1
        if header_len < 2 or 8 + header_len > size:
            raise CheckpointError(f"weights file '{file}' is truncated or not safetensors ({size} bytes, "
                                  "no complete header): download or convert it again")
        try:
            header = json.loads(handle.read(header_len))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise CheckpointError(f"weights file '{file}' has a corrupt safetensors header ({error}): "
                                  "download or convert it again") from None
    ends = [entry["data_offsets"][1] for key, entry in header.items()
            if key != "__metadata__" and isinstance(entry, dict) and "data_offsets" in entry]
    expected = 8 + header_len + max(ends, default=0)
    if size < expected:
        raise CheckpointError(f"weights file '{file}' is truncated: {size} bytes, its header describes "
                              f"{expected}: download or convert it again")


def _open_safetensors(file):
    from safetensors import safe_open

    check_safetensors_file(file)
    try:
        return safe_open(file, framework="np")
    except Exception:  # bfloat16 etc. have no NumPy dtype: go through torch
        pass
    try:
        return safe_open(file, framework="pt")
    except Exception as error:
        raise CheckpointError(f"cannot read weights file '{file}': {error}") from None


def keras_weights_hold_int8(path):
    """Whether a Keras ``.h5`` weights file holds int8 arrays (a quantized model's); None for
    any other kind of checkpoint."""
    if not str(path).endswith(".h5") or not os.path.isfile(path):
        return None
    import h5py

    found = []
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: found.append(True) if isinstance(obj, h5py.Dataset) and obj.dtype == np.int8
                     else None)
    return bool(found)


def checkpoint_format(path):
    """``'keras'``, ``'hf'`` or ``'tf'`` for a checkpoint path; CheckpointError if unknown."""
    p = str(path)
    if p.endswith(".h5") or p.endswith(".keras"):
        return "keras"
    if p.endswith((".safetensors", ".bin", ".pt", ".pth", ".index.json")):
        return "hf"
    if os.path.isdir(p):
        names = set(os.listdir(p))
        if names & set(HF_WEIGHT_FILES):
            return "hf"
        if "checkpoint" in names or any(n.endswith(".index") for n in names):
            return "tf"
        if any(n.endswith(".weights.h5") for n in names):
            return "keras"
        raise CheckpointError(f"directory '{p}' holds no checkpoint this package can read")
    if os.path.exists(p + ".index"):
        return "tf"
    raise CheckpointError(
        f"checkpoint '{p}' not found (expected a TF checkpoint prefix with '{p}.index', "
        "an HF directory or .safetensors/.bin file, or a Keras .weights.h5 file)"
    )


def open_checkpoint(path):
    """A reader for a TF or HF checkpoint (Keras files are loaded by Keras itself)."""
    fmt = checkpoint_format(path)
    if fmt == "tf":
        return TFCheckpointReader(path)
    if fmt == "hf":
        return HFCheckpointReader(path)
    raise CheckpointError(f"'{path}' is a Keras weights file: load it with model.load_weights")


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside ``path`` (same suffix); rename it onto
    ``path`` only if the block succeeds, else delete it."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path)) or "."
    os.makedirs(directory, exist_ok=True)
    base = os.path.basename(path)
    suffix = ".weights.h5" if base.endswith(".weights.h5") else os.path.splitext(base)[1]
    fd, tmp = tempfile.mkstemp(prefix=f".{base}.", suffix=".tmp" + suffix, dir=directory)
    os.close(fd)
    os.remove(tmp)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def save_safetensors(tensors, path, metadata=None):
    """Write ``{name: array}`` to a safetensors file atomically."""
    from safetensors.numpy import save_file

    tensors = {k: np.ascontiguousarray(v) for k, v in tensors.items()}
    with atomic_path(path) as tmp:
        save_file(tensors, tmp, metadata={k: str(v) for k, v in (metadata or {}).items()})


def save_json(obj, path):
    """Write JSON atomically (UTF-8, indented)."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(obj, f, indent=2, ensure_ascii=False)


def save_tf_checkpoint(tensors, prefix):
    """Write ``{name: array}`` as a name-based TF checkpoint (``prefix.index`` +
    ``prefix.data-*``), readable by ``tf.train.load_checkpoint`` and bert4keras.
    Written under a temporary prefix, then renamed file by file."""
    import tensorflow as tf

    prefix = os.fspath(prefix)
    directory = os.path.dirname(os.path.abspath(prefix))
    os.makedirs(directory, exist_ok=True)
    tmp = os.path.join(directory, f".tmp-{os.getpid()}-{os.path.basename(prefix)}")
    names = sorted(tensors)
    tf.raw_ops.SaveV2(prefix=tmp, tensor_names=names, shape_and_slices=[""] * len(names),
                      tensors=[tf.convert_to_tensor(np.asarray(tensors[n])) for n in names])
    written = [f for f in os.listdir(directory) if f.startswith(os.path.basename(tmp) + ".")]
    for f in sorted(written, key=lambda f: f.endswith(".index")):  # index last: the ckpt appears whole
        os.replace(os.path.join(directory, f), os.path.join(directory, os.path.basename(prefix) + f[len(os.path.basename(tmp)):]))
    with open(os.path.join(directory, "checkpoint"), "w") as f:
        f.write(f'model_checkpoint_path: "{os.path.basename(prefix)}"\n')
