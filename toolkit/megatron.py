"""Read a model-parallel Megatron-LM GPT-2 checkpoint (the 2019-2020 code that
TsinghuaAI's CPM-Generate release of CPM-LM 2.6B is built on) and stream its
merged, unsharded weights in Hugging Face GPT-2 naming and layout.

The release is a directory of ``mp_rank_XX_model_states.pt`` files, one per
model-parallel rank (CPM-LM: two, under ``80000/`` next to
``latest_checkpointed_iteration.txt``). Each is a ``torch.save``'d dict with
the rank's state dict under ``'module'`` (DeepSpeed) or ``'model'``
(Megatron's own saver) and non-tensor metadata beside it.

How the ranks split the weights (Megatron ``mpu``):

* ``word_embeddings.weight`` (VocabParallelEmbedding): vocabulary rows,
  rank r holds the r-th contiguous block;
* ``attention.query_key_value`` (ColumnParallelLinear, ``stride=3``): torch
  ``(out, in)`` layout, each rank holds ``[q_r; k_r; v_r]`` for its own heads,
  so the full q is the concatenation of every rank's q part;
* ``mlp.dense_h_to_4h`` (ColumnParallelLinear): output rows (and bias);
* ``attention.dense`` and ``mlp.dense_4h_to_h`` (RowParallelLinear): input
  columns; their biases are replicated;
* ``position_embeddings``, every LayerNorm: replicated (taken from rank 0).

Example:

>>> ckpt = MegatronCheckpoint("CPM-Generate", num_heads=32)   # doctest: +SKIP
>>> ckpt.hf_config()["n_layer"], len(ckpt)                     # doctest: +SKIP
(32, 388)
>>> for name, array in ckpt.iter_hf_tensors():                 # doctest: +SKIP
...     ...                                                    # one float32 array at a time

The writer is the reader's inverse, from the same layout tables:
:func:`megatron_split` cuts an unsharded Hugging Face GPT-2 state dict into rank
state dicts, :func:`random_megatron_shards` makes random ones of any shape (one
rank at a time), and :func:`write_megatron_checkpoint` writes them as a release.

>>> shards = megatron_split(hf_model.state_dict(), num_shards=2)   # doctest: +SKIP
>>> write_megatron_checkpoint("CPM", shards, dtype=torch.float16)  # doctest: +SKIP
['CPM/80000/mp_rank_00_model_states.pt', 'CPM/80000/mp_rank_01_model_states.pt']
"""

import os
import pickle
import re
import warnings
import zipfile

import numpy as np

from toolkit.checkpoints import CheckpointError

SHARD_RE = re.compile(r"^mp_rank_(\d+)_model_states\.pt$")
TRACKER_FILE = "latest_checkpointed_iteration.txt"

# Megatron GPT-2 names -> how they are split across model-parallel ranks:
# 'rows' (dim 0 of the torch tensor), 'cols' (dim 1), 'qkv' (rows, per-rank
# [q; k; v] blocks) or None (replicated).
GLOBAL_KEYS = {
    "word_embeddings.weight": "rows",
    "position_embeddings.weight": None,
    "transformer.final_layernorm.weight": None,
    "transformer.final_layernorm.bias": None,
}
LAYER_KEYS = {
    "input_layernorm.weight": None,
    "input_layernorm.bias": None,
    "attention.query_key_value.weight": "qkv",
    "attention.query_key_value.bias": "qkv",
    "attention.dense.weight": "cols",
    "attention.dense.bias": None,
    "post_attention_layernorm.weight": None,
    "post_attention_layernorm.bias": None,
    "mlp.dense_h_to_4h.weight": "rows",
    "mlp.dense_h_to_4h.bias": "rows",
    "mlp.dense_4h_to_h.weight": "cols",
    "mlp.dense_4h_to_h.bias": None,
}
# Megatron layer key -> HF GPT-2 name (under ``transformer.h.{i}.``); weights of
# torch Linear layers are transposed into HF's Conv1D (in, out) layout.
HF_LAYER_NAMES = {
    "input_layernorm.weight": "ln_1.weight",
    "input_layernorm.bias": "ln_1.bias",
    "attention.query_key_value.weight": "attn.c_attn.weight",
    "attention.query_key_value.bias": "attn.c_attn.bias",
    "attention.dense.weight": "attn.c_proj.weight",
    "attention.dense.bias": "attn.c_proj.bias",
    "post_attention_layernorm.weight": "ln_2.weight",
    "post_attention_layernorm.bias": "ln_2.bias",
    "mlp.dense_h_to_4h.weight": "mlp.c_fc.weight",
    "mlp.dense_h_to_4h.bias": "mlp.c_fc.bias",
    "mlp.dense_4h_to_h.weight": "mlp.c_proj.weight",
    "mlp.dense_4h_to_h.bias": "mlp.c_proj.bias",
}
LAYER_RE = re.compile(r"^transformer\.layers\.(\d+)\.(.+)$")
HF_LAYER_RE = re.compile(r"^transformer\.h\.(\d+)\.")

# Non-tensor objects that Megatron/DeepSpeed checkpoints carry beside the
# weights (args, NumPy/Python RNG states) and that are safe to rebuild:
# allowlisted for torch.load(weights_only=True). Anything else needs
# ``trust_pickle=True``.
_SAFE_GLOBAL_NAMES = {
    "argparse.Namespace",
    "numpy.ndarray",
    "numpy.dtype",
    "numpy.core.multiarray._reconstruct",
    "numpy._core.multiarray._reconstruct",
    "numpy.core.multiarray.scalar",
    "numpy._core.multiarray.scalar",
}


class MegatronError(CheckpointError):
    """A Megatron checkpoint is incomplete, inconsistent or not a GPT-2."""


# ------------------------------------------------------------------ files
def find_shards(path):
    """The shard files of a Megatron checkpoint, ordered by rank.

    ``path`` is the folder holding ``mp_rank_XX_model_states.pt``, or a
    folder above it: the iteration named by ``latest_checkpointed_iteration.txt``
    is used, else the only subfolder that holds shards. Raises MegatronError
    naming the file when a rank is missing (ranks must be 0..N-1)."""
    path = os.fspath(path)
    if os.path.isfile(path) and SHARD_RE.match(os.path.basename(path)):
        path = os.path.dirname(path) or "."
    if not os.path.isdir(path):
        raise MegatronError(f"Megatron checkpoint folder '{path}' does not exist")
    folder = _shard_folder(path)
    ranks = {}
    for fname in sorted(os.listdir(folder)):
        m = SHARD_RE.match(fname)
        if m:
            rank = int(m.group(1))
            if rank in ranks:
                raise MegatronError(f"two files for model-parallel rank {rank} in '{folder}': "
                                    f"'{os.path.basename(ranks[rank])}' and '{fname}'")
            ranks[rank] = os.path.join(folder, fname)
    missing = [r for r in range(max(ranks) + 1) if r not in ranks]
    if missing:
        names = [os.path.join(folder, f"mp_rank_{r:02d}_model_states.pt") for r in missing]
        raise MegatronError(f"missing shard file(s) {names}: found ranks {sorted(ranks)}, "
                            f"but a {max(ranks) + 1}-way model-parallel checkpoint needs ranks 0..{max(ranks)}")
    return [ranks[r] for r in range(len(ranks))]


def _has_shards(folder):
    return any(SHARD_RE.match(f) for f in os.listdir(folder))


def _shard_folder(path):
    if _has_shards(path):
        return path
    tracker = os.path.join(path, TRACKER_FILE)
    if os.path.isfile(tracker):
        with open(tracker, encoding="utf-8") as f:
            tag = f.read().strip()
        candidates = [tag]
        if tag.isdigit():
            candidates += [str(int(tag)), f"iter_{int(tag):07d}"]
        for c in candidates:
            sub = os.path.join(path, c)
            if os.path.isdir(sub) and _has_shards(sub):
                return sub
        raise MegatronError(f"'{tracker}' names iteration {tag!r}, but none of {candidates} under '{path}' "
                            "holds mp_rank_XX_model_states.pt files")
    subs = sorted(d for d in os.listdir(path) if os.path.isdir(os.path.join(path, d))
                  and _has_shards(os.path.join(path, d)))
    if len(subs) == 1:
        return os.path.join(path, subs[0])
    if subs:
        raise MegatronError(f"'{path}' has several checkpoints {subs} and no {TRACKER_FILE}: "
                            "pass the folder of the one to convert")
    raise MegatronError(f"no mp_rank_XX_model_states.pt files in '{path}' or its subfolders "
                        "(this reads Megatron-LM GPT-2 / CPM-Generate checkpoints)")


def load_shard(path, trust_pickle=False):
    """``(state_dict, metadata, how)`` of one shard file.

    Loaded with ``torch.load(map_location='cpu', mmap=True)`` (tensors stay
    on disk until read; files in torch's pre-1.6 format cannot be mapped and
    are read whole) and ``weights_only=True``: the non-tensor objects
    Megatron stores (``args``, RNG states) are allowlisted one by one if they
    are known to be harmless (``_SAFE_GLOBAL_NAMES``); any other object raises
    MegatronError unless ``trust_pickle`` (then ``weights_only=False``, which
    can run code from the file). ``how`` says which way it was loaded."""
    import torch

    mmap = zipfile.is_zipfile(path)
    kwargs = dict(map_location="cpu", mmap=mmap)
    allowed = []
    how = "weights_only=True"
    while True:
        try:
            if allowed:
                with torch.serialization.safe_globals(allowed):
                    obj = torch.load(path, weights_only=True, **kwargs)
            else:
                obj = torch.load(path, weights_only=True, **kwargs)
            if allowed:
                how = f"weights_only=True, allowlisted {[n for _, n in allowed]}"
            break
        except pickle.UnpicklingError as e:
            name = _unsupported_global(str(e))
            safe = _resolve_safe_global(name) if name else None
            if safe is not None and all(n != name for _, n in allowed):
                allowed.append((safe, name))
                continue
            if trust_pickle:
                obj = torch.load(path, weights_only=False, **kwargs)
                how = "weights_only=False (trust_pickle)"
                break
            what = f"object '{name}'" if name else "an object torch's weights-only loader refuses"
            raise MegatronError(
                f"'{path}' holds {what}, which is not known to be safe to unpickle; if you trust "
                "the file, load it with trust_pickle=True (--trust-pickle), which runs "
                f"torch.load(weights_only=False). torch said: {_first_line(str(e))}") from e
        except Exception as e:
            raise MegatronError(f"cannot read Megatron shard '{path}': {e}") from e
    if not mmap:
        how += ", not memory-mapped (pre-1.6 torch file format)"
    if not isinstance(obj, dict):
        raise MegatronError(f"'{path}' holds a {type(obj).__name__}, not a checkpoint dict")
    for key in ("module", "model"):
        if isinstance(obj.get(key), dict):
            state = obj[key]
            meta = {k: v for k, v in obj.items() if k != key}
            break
    else:
        raise MegatronError(f"'{path}' has no state dict under 'module' or 'model'; "
                            f"top-level keys: {sorted(map(str, obj))}")
    return _strip_module_prefix(state), meta, how


def _unsupported_global(message):
    """The global torch's weights-only unpickler refused, from its message
    (a GLOBAL it may not import, or a class it may not build)."""
    m = (re.search(r"GLOBAL ([\w.]+) was not an allowed global", message)
         or re.search(r"allowlisted via `add_safe_globals`, but got <class '([\w.]+)'>", message))
    return m.group(1) if m else None


def _first_line(message):
    for line in message.splitlines():
        if "Unsupported global" in line or "but got" in line:
            return line.strip()
    return message.strip().splitlines()[0] if message.strip() else message


def _resolve_safe_global(name):
    """The object behind an allowlisted global name (NumPy dtype classes too), else None."""
    import importlib

    if name in _SAFE_GLOBAL_NAMES:
        module, _, attr = name.rpartition(".")
        if module.startswith("numpy.core."):  # NumPy 1.x pickles; NumPy 2 moved it to numpy._core
            module = module.replace("numpy.core.", "numpy._core.", 1) if hasattr(np, "_core") else module
        try:
            return getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError):
            return None
    if name.startswith("numpy.dtypes."):
        cls = getattr(getattr(np, "dtypes", None), name.rpartition(".")[2], None)
        if isinstance(cls, type) and issubclass(cls, np.dtype):
            return cls
    return None


def _strip_module_prefix(state):
    keys = list(state)
    while keys and all(k.startswith("module.") for k in keys):
        state = {k[len("module."):]: v for k, v in state.items()}
        keys = list(state)
    return state


# ------------------------------------------------------------- the model
class MegatronCheckpoint:
    """A model-parallel Megatron GPT-2 checkpoint, validated on opening.

    Args:
        path: the shard folder or one above it (see ``find_shards``).
        num_heads: attention heads of the whole model (the weights do not say;
            CPM-LM has 32). Must divide the hidden size, and be divisible by
            the number of shards.
        num_layers: if given, the layer count the checkpoint must have.
        trust_pickle: allow arbitrary pickled objects (see ``load_shard``).

    Attributes: ``paths`` (shard files by rank), ``load_info`` (how each was
    unpickled), ``metadata`` (rank 0's non-tensor entries), and the sizes
    ``vocab_size``, ``hidden_size``, ``num_layers``, ``num_heads``,
    ``intermediate_size``, ``max_positions``.
    """

    def __init__(self, path, num_heads, num_layers=None, trust_pickle=False):
        self.paths = find_shards(path)
        self.num_shards = len(self.paths)
        self.shards, metas, self.load_info = [], [], []
        for p in self.paths:
            state, meta, how = load_shard(p, trust_pickle=trust_pickle)
            self.shards.append(state)
            metas.append(meta)
            self.load_info.append(how)
        self.metadata = metas[0]
        declared = self.metadata.get("mp_world_size")
        if isinstance(declared, int) and declared != self.num_shards:
            raise MegatronError(
                f"'{self.paths[0]}' says mp_world_size={declared} but {self.num_shards} shard file(s) were found "
                f"({[os.path.basename(p) for p in self.paths]}): a shard is missing")
        self._validate(int(num_heads), num_layers)

    # ---------------------------------------------------------- checks
    def _name(self, rank):
        return os.path.basename(self.paths[rank])

    def _validate(self, num_heads, num_layers):
        n = self._check_layers(self._check_same_keys(), num_layers)
        expected = list(megatron_splits(n))
        missing = [k for k in expected if k not in self.shards[0]]
        if missing:
            raise MegatronError(f"'{self.paths[0]}' lacks {len(missing)} GPT-2 variable(s), e.g. {missing[:5]}")
        self._check_tensors(expected)
        parts = self.num_shards
        vocab_part, hidden = self._shape("word_embeddings.weight", 2)
        self.vocab_size, self.hidden_size = vocab_part * parts, hidden
        self.max_positions = self._shape("position_embeddings.weight", 2)[0]
        self.num_layers, self.num_heads = n, num_heads
        if num_heads <= 0 or hidden % num_heads:
            raise MegatronError(f"hidden size {hidden} is not a multiple of num_heads={num_heads}")
        if num_heads % parts:
            raise MegatronError(f"num_heads={num_heads} is not divisible by the {parts} model-parallel shards")
        self.intermediate_size = self._shape("transformer.layers.0.mlp.dense_h_to_4h.weight", 2)[0] * parts
        self._check_shapes()

    def _check_same_keys(self):
        """The variable names every shard has (the same on every rank)."""
        keys0 = set(self.shards[0])
        for r, state in enumerate(self.shards[1:], 1):
            if set(state) != keys0:
                only0, only_r = sorted(keys0 - set(state)), sorted(set(state) - keys0)
                raise MegatronError(
                    f"shards disagree on their variables: only in {self._name(0)}: {only0[:5]}, "
                    f"only in {self._name(r)}: {only_r[:5]}")
        return keys0

    def _check_layers(self, keys, num_layers):
        """The number of transformer layers (indices 0..n-1, ``num_layers`` if given); no unknown variable."""
        layers, unknown = set(), []
        for k in keys:
            m = LAYER_RE.match(k)
            if m and m.group(2) in LAYER_KEYS:
                layers.add(int(m.group(1)))
            elif k not in GLOBAL_KEYS:
                unknown.append(k)
        if unknown:
            raise MegatronError(
                f"'{self.paths[0]}' has variables that are not Megatron GPT-2 (2019-2020 layout) weights: "
                f"{sorted(unknown)[:8]}")
        n = len(layers)
        if n == 0:
            raise MegatronError(f"'{self.paths[0]}' has no transformer.layers.* variables")
        if layers != set(range(n)):
            gaps = sorted(set(range(max(layers) + 1)) - layers)
            raise MegatronError(f"transformer.layers indices are not 0..{n - 1}: missing {gaps}")
        if num_layers is not None and int(num_layers) != n:
            raise MegatronError(
                f"the checkpoint has {n} transformer layers (transformer.layers.0..{n - 1}), "
                f"but {int(num_layers)} were expected (num_layers / --num-layers)")
        return n

    def _check_tensors(self, expected):
        """Floating-point tensors, of the same shape on every rank."""
        import torch

        for key in expected:
            for r, s in enumerate(self.shards):
                t = s[key]
                if not isinstance(t, torch.Tensor) or not t.is_floating_point():
                    what = f"a {t.dtype} tensor" if isinstance(t, torch.Tensor) else f"a {type(t).__name__}"
                    raise MegatronError(
                        f"variable '{key}' in {self._name(r)} is {what}, expected floating-point weights")
            shapes = [tuple(s[key].shape) for s in self.shards]
            for r, shape in enumerate(shapes[1:], 1):
                if shape != shapes[0]:
                    raise MegatronError(
                        f"variable '{key}' has shape {shapes[0]} in {self._name(0)} but {shape} in {self._name(r)}")

    def _check_shapes(self):
        """Every variable's shard shape as :func:`megatron_layout` says for these sizes."""
        parts, hidden = self.num_shards, self.hidden_size
        layout = megatron_layout(self.num_layers, hidden, self.intermediate_size, self.vocab_size,
                                 self.max_positions)
        for key, (shape, split) in layout.items():
            want = shard_shape(shape, split, parts)
            if self._shape(key) != want:
                raise MegatronError(
                    f"variable '{key}' has shape {self._shape(key)} per shard, expected {want} for hidden "
                    f"size {hidden} (from word_embeddings.weight) split {parts} ways")

    def _shape(self, key, ndim=None):
        shape = tuple(self.shards[0][key].shape)
        if ndim is not None and len(shape) != ndim:
            raise MegatronError(f"variable '{key}' has shape {shape}, expected {ndim} dimensions")
        return shape

    # ---------------------------------------------------------- output
    def hf_config(self):
        """Hugging Face ``GPT2Config`` keys for the merged model (Megatron's
        GeLU is the tanh form: ``gelu_new``; its LayerNorm eps is 1e-5).

        ``pad_token_id`` is None: Megatron's GPT-2 masks no key by its id (only
        the causal mask), and CPM pads only after a text (with ``<pad>``, id 5 in
        its vocabulary), where a causal model never reads it; so every id, 0
        (``<unk>``) included, is a real token."""
        return {
            "architectures": ["GPT2LMHeadModel"],
            "model_type": "gpt2",
            "vocab_size": self.vocab_size,
            "n_embd": self.hidden_size,
            "n_layer": self.num_layers,
            "n_head": self.num_heads,
            "n_positions": self.max_positions,
            "n_inner": self.intermediate_size,
            "activation_function": "gelu_new",
            "layer_norm_epsilon": 1e-5,
            "initializer_range": 0.02,
            "resid_pdrop": 0.1,
            "embd_pdrop": 0.1,
            "attn_pdrop": 0.1,
            "tie_word_embeddings": True,
            "pad_token_id": None,
        }

    def hf_tensor_names(self):
        """HF GPT-2 names in the order ``iter_hf_tensors`` yields them."""
        names = ["transformer.wte.weight", "transformer.wpe.weight"]
        for i in range(self.num_layers):
            names += [f"transformer.h.{i}.{HF_LAYER_NAMES[k]}" for k in LAYER_KEYS]
        return names + ["transformer.ln_f.weight", "transformer.ln_f.bias"]

    def __len__(self):
        return 4 + 12 * self.num_layers

    def iter_hf_tensors(self):
        """Yield ``(hf_name, float32 array)`` one merged tensor at a time, in
        HF GPT-2 layout (Conv1D weights are ``(in, out)``; ``c_attn`` holds
        q | k | v, each over all heads in order)."""
        yield "transformer.wte.weight", self._merge("word_embeddings.weight", "rows")
        yield "transformer.wpe.weight", self._merge("position_embeddings.weight", None)
        for i in range(self.num_layers):
            for key, split in LAYER_KEYS.items():
                value = self._merge(f"transformer.layers.{i}.{key}", split)
                if key.endswith(".weight") and value.ndim == 2:  # torch Linear (out, in) -> Conv1D (in, out)
                    value = np.ascontiguousarray(value.T)
                yield f"transformer.h.{i}.{HF_LAYER_NAMES[key]}", value
        yield "transformer.ln_f.weight", self._merge("transformer.final_layernorm.weight", None)
        yield "transformer.ln_f.bias", self._merge("transformer.final_layernorm.bias", None)

    def _merge(self, key, split):
        import torch

        parts = [s[key].to(torch.float32) for s in self.shards]
        if split is None:
            for r, p in enumerate(parts[1:], 1):
                if not torch.equal(p, parts[0]):
                    diff = float((p - parts[0]).abs().max())
                    warnings.warn(f"replicated variable '{key}' differs between {self._name(0)} and "
                                  f"{self._name(r)} (max abs difference {diff:.3g}); using rank 0's", stacklevel=3)
            out = parts[0]
        elif split == "rows":
            out = torch.cat(parts, 0)
        elif split == "cols":
            out = torch.cat(parts, 1)
        else:  # 'qkv': each rank holds [q_r; k_r; v_r] for its own heads
            pieces = [p.chunk(3, 0) for p in parts]
            out = torch.cat([torch.cat([pc[j] for pc in pieces], 0) for j in range(3)], 0)
        del parts
        return out.numpy()


# ------------------------------------------------------------- writing
def megatron_splits(num_layers):
    """``{name: split}`` of every variable of a Megatron GPT-2 with ``num_layers`` layers, in the
    order of a checkpoint (split: ``'rows'``, ``'cols'``, ``'qkv'`` or None, see ``GLOBAL_KEYS``)."""
    splits = {key: GLOBAL_KEYS[key] for key in ("word_embeddings.weight", "position_embeddings.weight")}
    for i in range(num_layers):
        splits.update((f"transformer.layers.{i}.{key}", split) for key, split in LAYER_KEYS.items())
    splits.update((key, None) for key in ("transformer.final_layernorm.weight", "transformer.final_layernorm.bias"))
    return splits


def megatron_layout(num_layers, hidden, inner, vocab, positions):
    """``{name: (shape, split)}`` of a Megatron GPT-2: the merged shapes in torch's Linear
    ``(out, in)`` layout, in checkpoint order; :func:`shard_shape` gives each rank's part."""
    layer = {
        "input_layernorm.weight": (hidden,), "input_layernorm.bias": (hidden,),
        "attention.query_key_value.weight": (3 * hidden, hidden), "attention.query_key_value.bias": (3 * hidden,),
        "attention.dense.weight": (hidden, hidden), "attention.dense.bias": (hidden,),
        "post_attention_layernorm.weight": (hidden,), "post_attention_layernorm.bias": (hidden,),
        "mlp.dense_h_to_4h.weight": (inner, hidden), "mlp.dense_h_to_4h.bias": (inner,),
        "mlp.dense_4h_to_h.weight": (hidden, inner), "mlp.dense_4h_to_h.bias": (hidden,),
    }
    shapes = {"word_embeddings.weight": (vocab, hidden), "position_embeddings.weight": (positions, hidden)}
    layout = {}
    for name, split in megatron_splits(num_layers).items():
        match = LAYER_RE.match(name)
        layout[name] = (layer[match.group(2)] if match else shapes.get(name, (hidden,)), split)
    return layout


def shard_shape(shape, split, num_shards):
    """The shape of one rank's part of a merged tensor of ``shape`` split as ``split``."""
    if split in ("rows", "qkv"):
        return (shape[0] // num_shards, *shape[1:])
    if split == "cols":
        return (shape[0], shape[1] // num_shards)
    return tuple(shape)


def split_tensor(value, split, num_shards):
    """One merged torch tensor -> its ``num_shards`` rank parts, as Megatron's mpu lays them out
    (the inverse of :meth:`MegatronCheckpoint.iter_hf_tensors`' merge): vocabulary and
    column-parallel output rows, ``query_key_value`` per rank as ``[q_r; k_r; v_r]`` over its own
    heads, row-parallel input columns, the rest replicated. Each part is a compact copy."""
    import torch

    if split is None:
        parts = [value] * num_shards
    elif split == "qkv":
        q, k, v = (third.chunk(num_shards, 0) for third in value.chunk(3, 0))
        parts = [torch.cat(heads, 0) for heads in zip(q, k, v)]
    else:
        parts = value.chunk(num_shards, 0 if split == "rows" else 1)
    return [part.clone().contiguous() for part in parts]


def megatron_split(hf_state, num_shards):
    """An unsharded Hugging Face GPT-2 state dict (names ``transformer.wte.weight``, ...; torch
    tensors or arrays; other entries such as ``lm_head.weight`` are ignored) -> ``num_shards``
    Megatron rank state dicts, weights in torch Linear ``(out, in)`` layout (HF's Conv1D
    transposed). Writing them with :func:`write_megatron_checkpoint` and reading them back with
    :class:`MegatronCheckpoint` gives the same tensors."""
    import torch

    layers = {int(match.group(1)) for match in map(HF_LAYER_RE.match, hf_state) if match}
    hf_names = {"word_embeddings.weight": "transformer.wte.weight",
                "position_embeddings.weight": "transformer.wpe.weight",
                "transformer.final_layernorm.weight": "transformer.ln_f.weight",
                "transformer.final_layernorm.bias": "transformer.ln_f.bias"}
    shards = [{} for _ in range(num_shards)]
    for name, split in megatron_splits(len(layers)).items():
        match = LAYER_RE.match(name)
        hf_name = f"transformer.h.{match.group(1)}.{HF_LAYER_NAMES[match.group(2)]}" if match else hf_names[name]
        if hf_name not in hf_state:
            raise MegatronError(f"the GPT-2 state dict has no '{hf_name}' (for Megatron's '{name}')")
        value = torch.as_tensor(hf_state[hf_name])
        if match and name.endswith(".weight") and value.ndim == 2:  # Conv1D (in, out) -> Linear (out, in)
            value = value.t()
        for shard, part in zip(shards, split_tensor(value, split, num_shards)):
            shard[name] = part
    return shards


def random_megatron_shards(num_layers, hidden, inner, vocab, positions, num_shards, seed=0, dtype=None):
    """Yield the rank state dicts of a random Megatron GPT-2 one at a time (float16 unless
    ``dtype``): weights and biases drawn from N(0, 0.02), LayerNorm weights 1. Replicated
    tensors are seeded by name only, so they are equal on every rank, as in Megatron."""
    import zlib

    import torch

    dtype = torch.float16 if dtype is None else dtype
    layout = megatron_layout(num_layers, hidden, inner, vocab, positions)
    for rank in range(num_shards):
        state = {}
        for name, (shape, split) in layout.items():
            tensor = torch.empty(shard_shape(shape, split, num_shards), dtype=dtype)
            if name.endswith("layernorm.weight"):
                state[name] = tensor.fill_(1.0)
                continue
            offset = 0 if split is None else rank
            generator = torch.Generator().manual_seed(seed * 7919 + zlib.crc32(name.encode()) + offset)
            state[name] = tensor.normal_(0.0, 0.02, generator=generator)
        yield state


def write_megatron_checkpoint(root, shards, num_shards=None, dtype=None, iteration=80000, key="module",
                              legacy=False, extra=None):
    """Write rank state dicts as a model-parallel Megatron/DeepSpeed checkpoint, laid out as
    CPM-Generate's release: ``root/latest_checkpointed_iteration.txt`` and
    ``root/<iteration>/mp_rank_XX_model_states.pt`` (``iteration=None``: the shard files right in
    ``root``, no tracker file). Each file holds ``{key: state dict, 'iteration', 'mp_world_size',
    'dp_world_size'}`` plus ``extra``; ``dtype`` casts the tensors; ``legacy`` uses torch's pre-1.6
    file format.

    ``shards``: a list of state dicts, or any iterable of them with ``num_shards`` given (a
    generator such as :func:`random_megatron_shards` keeps one shard in memory at a time). Every
    file is written under a temporary name and renamed when complete, the tracker file last.
    Returns the shard paths by rank."""
    import torch

    if num_shards is None and not hasattr(shards, "__len__"):
        raise ValueError("write_megatron_checkpoint: shards is an iterator: give num_shards too")
    num_shards = len(shards) if num_shards is None else int(num_shards)
    root = os.fspath(root)
    folder = os.path.join(root, str(iteration)) if iteration is not None else root
    os.makedirs(folder, exist_ok=True)
    paths = []
    for rank, state in enumerate(shards):
        if dtype is not None:
            state = {name: value.to(dtype) for name, value in state.items()}
        record = {key: state, "iteration": iteration, "mp_world_size": num_shards, "dp_world_size": 1,
                  **(extra or {})}
        paths.append(os.path.join(folder, f"mp_rank_{rank:02d}_model_states.pt"))
        _write_atomically(paths[-1], lambda tmp: torch.save(record, tmp, _use_new_zipfile_serialization=not legacy))
        del state, record
    if len(paths) != num_shards:
        raise ValueError(f"write_megatron_checkpoint: got {len(paths)} shard(s), but num_shards={num_shards}")
    if iteration is not None:
        _write_atomically(os.path.join(root, TRACKER_FILE), lambda tmp: _write_text(tmp, f"{iteration}\n"))
    return paths


def _write_atomically(path, write):
    """``write(temporary path)``, then rename it to ``path``; on failure nothing is left behind."""
    tmp = path + ".tmp"
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def _write_text(path, text):
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
