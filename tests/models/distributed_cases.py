"""What tests/models/test_distribution.py runs in a subprocess with ``KERAS_BACKEND=jax`` and
8 virtual CPU devices (``XLA_FLAGS=--xla_force_host_platform_device_count=8``): each case
prints one JSON line of figures, which the test asserts on.

    python -m tests.models.distributed_cases data|model|coverage|load PATH
"""

import json
import os
import sys
import threading
import time

import keras
import numpy as np

from models import build_transformer_model
from models import distribution as dist
from models.mlm_training import build_mlm_model, masked_lm_loss
from tests.helpers import TINY_BERT, TINY_GPT2

STEPS, BATCH, LENGTH, SLOTS = 3, 8, 16, 4
BERT = dict(TINY_BERT, vocab_size=96)
GPT2 = dict(TINY_GPT2, vocab_size=96)
VARIANTS = {"bert-mlm": "softmax", "gpt2": "softmax", "bert-performer": "performer", "bert-taylor": "taylor"}


def model_of(kind):
    """A freshly initialised model (seed 0) of ``kind``, compiled with AdamW."""
    keras.utils.set_random_seed(0)
    if kind == "bert-mlm":
        model = build_mlm_model(BERT, BERT["vocab_size"])
        loss = masked_lm_loss
    elif kind == "gpt2":
        model = build_transformer_model(GPT2, model="gpt2", with_lm="linear")
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    else:
        model = build_transformer_model(BERT, attention=VARIANTS[kind], with_mlm="linear")
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile(optimizer=keras.optimizers.AdamW(3e-4), loss=loss)
    return model


def global_batches(kind):
    """``STEPS`` global batches for ``kind``, every id (0 included) among them."""
    rng = np.random.default_rng(1)
    out = []
    for step in range(STEPS):
        tokens = rng.integers(0, BERT["vocab_size"], (BATCH, LENGTH)).astype("int32")
        tokens[0, : min(LENGTH, BERT["vocab_size"])] = np.arange(step * LENGTH, (step + 1) * LENGTH) % BERT["vocab_size"]
        if kind == "bert-mlm":
            positions = rng.integers(0, LENGTH, (BATCH, SLOTS)).astype("int32")
            targets = rng.integers(1, BERT["vocab_size"], (BATCH, SLOTS)).astype("int32")
            out.append(((tokens, np.zeros_like(tokens), positions), targets))
        elif kind == "gpt2":
            out.append((tokens, np.roll(tokens, -1, axis=1)))
        else:
            out.append(((tokens, np.zeros_like(tokens)), rng.integers(0, BERT["vocab_size"], (BATCH, LENGTH))))
    return out


def trained(kind, spec_text=None):
    """``(model, losses, weights)`` after ``STEPS`` steps, on one device or under ``spec_text``."""
    distribution = None
    if spec_text:
        config = GPT2 if kind == "gpt2" else BERT
        distribution = dist.make_distribution(dist.parse_distribution(spec_text), config)
    keras.distribution.set_distribution(distribution)
    try:
        model = model_of(kind)
        losses = [float(model.train_on_batch(x, y)) for x, y in global_batches(kind)]
        return model, losses, [np.asarray(w.numpy()) for w in model.weights]
    finally:
        keras.distribution.set_distribution(None)


def compare(kind, spec_text):
    """The largest weight and loss differences between one device and ``spec_text``."""
    _, losses_one, weights_one = trained(kind)
    model, losses, weights = trained(kind, spec_text)
    return model, {"weights": max(float(np.abs(a - b).max()) for a, b in zip(weights_one, weights)),
                   "loss": max(abs(a - b) for a, b in zip(losses_one, losses)), "losses": losses}


def case_data():
    return {kind: compare(kind, "data")[1] for kind in ("bert-mlm", "gpt2")}


def case_model():
    result = {}
    for kind in VARIANTS:
        model, figures = compare(kind, "2,4")
        specs = dist.variable_specs(model)
        figures["specs"] = {path: [axis for axis in spec] for path, spec in specs.items()}
        figures["devices"] = {path: len(w.value.sharding.device_set) for path, w in
                              ((w.path, w) for w in model.weights)}
        result[kind] = figures
    return result


def case_coverage():
    """A layer renamed so that the layout map misses it: the check names it."""
    keras.utils.set_random_seed(0)
    mesh = dist.device_mesh(dist.parse_distribution("2,4"))
    layouts = dist.layout_map(BERT, mesh)
    model = build_transformer_model(BERT)
    renamed = keras.Sequential([keras.Input((LENGTH, 32)), keras.layers.Dense(512, name="Transformer-0-FFN-In")])
    try:
        dist.check_layout_coverage(renamed, layouts)
        error = None
    except dist.DistributionError as caught:
        error = str(caught)
    return {"bert": dist.uncovered_variables(model, layouts), "renamed_error": error}


def _rss():
    """Resident memory of this process's own (anonymous) pages: resident minus shared, so the
    pages of the memory-mapped checkpoint file, which the kernel can drop, do not count."""
    with open("/proc/self/statm") as f:
        pages = [int(value) for value in f.read().split()]
    return (pages[1] - pages[2]) * os.sysconf("SC_PAGE_SIZE")


def case_load(path):
    """A checkpoint at ``path`` (HF folder) loaded into a 1 x 8 model-parallel BERT built first
    (its variables created on their shards): the peak RSS growth of the load alone, the model's
    bytes, its largest tensor's, the values and the kernels' shard shapes."""
    config = json.load(open(os.path.join(path, "config.json")))
    distribution = dist.make_distribution(dist.parse_distribution("model:8"), config)
    keras.distribution.set_distribution(distribution)
    transformer = build_transformer_model(path, return_keras_model=False)
    model = transformer.model
    start, peak, done = _rss(), [0], threading.Event()

    def sample():  # the resident size every millisecond while the checkpoint loads
        while not done.is_set():
            peak[0] = max(peak[0], _rss())
            time.sleep(0.001)

    sampler = threading.Thread(target=sample)
    sampler.start()
    transformer.load_weights_from_checkpoint(path)
    done.set()
    sampler.join()
    growth = max(peak[0], _rss()) - start
    sizes = [int(np.prod(w.shape)) * 4 for w in model.weights]
    from safetensors.numpy import load_file

    kernel = next(w for w in model.weights if w.path.endswith("FeedForward/intermediate/kernel"))
    stored = load_file(os.path.join(path, "model.safetensors"))["bert.encoder.layer.0.intermediate.dense.weight"]
    return {"peak_growth": growth, "model_bytes": sum(sizes),
            "largest": max(sizes), "same_values": bool(np.array_equal(np.asarray(kernel.numpy()), stored.T)),
            "shard_shapes": sorted({tuple(shard.data.shape) for shard in kernel.value.addressable_shards}),
            "spec": list(kernel.value.sharding.spec)}


def main(argv):
    case = argv[0]
    result = case_load(argv[1]) if case == "load" else globals()[f"case_{case}"]()
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])
