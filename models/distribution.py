"""Training on several devices and hosts with Keras' own ``keras.distribution`` (JAX backend,
XLA SPMD): data parallelism over every device, Megatron-style model parallelism through a
layout map this package gives for its models, and multi-process start-up.

Nothing here moves tensors by hand: a ``DataParallel`` or ``ModelParallel`` distribution is
set (``keras.distribution.set_distribution``) before the model is built, Keras creates each
variable already split onto its devices (``jax.jit(..., out_shardings=...)``), ``fit`` splits
every global batch along the ``batch`` axis, and XLA inserts the collectives.

The layout map (Shoeybi et al. 2019, Megatron-LM, section 3: an MLP ``Y = GeLU(X A) B`` with
``A`` split by columns and ``B`` by rows needs one all-reduce, likewise attention with the
query/key/value kernels split by columns, i.e. by heads, and the output kernel by rows)::

    .../(query|key|value)/kernel        (None, "model")     bias ("model",)
    .../MultiHeadSelfAttention/output   ("model", None)
    FeedForward/intermediate/kernel     (None, "model")     bias ("model",)
    FeedForward/output/kernel           ("model", None)
    Embedding-Token, Embedding-Position (None, "model")     (the hidden axis)
    MLM-Dense/kernel                    (None, "model")

Every other variable (norms, biases after a row split, the segment table, Performer's random
features) is replicated. :func:`check_layout_coverage` refuses a model whose large kernels the
map misses (a renamed layer would otherwise train unsharded without a word).

>>> spec = parse_distribution("model:2")
>>> spec.mesh_shape(8)
(4, 2)
>>> parse_distribution("2,4").mesh_shape(8), parse_distribution("data").mesh_shape(8)
((2, 4), (8, 1))
>>> sorted(layout_rules())[:2]
['.*/(query|key|value)/bias', '.*/(query|key|value)/kernel']
"""

import contextlib
import dataclasses
import math
import os
import re

import keras
import numpy as np

BATCH_AXIS = "batch"
MODEL_AXIS = "model"
# a variable of at least this many values whose rank is 2 or more must have a layout
LARGE_VARIABLE = 1 << 14
_COLUMNS = (None, MODEL_AXIS)
_ROWS = (MODEL_AXIS, None)
_RULES = {
    ".*/(query|key|value)/kernel": _COLUMNS,
    ".*/(query|key|value)/bias": (MODEL_AXIS,),
    ".*MultiHeadSelfAttention/output/kernel": _ROWS,
    ".*FeedForward/intermediate/kernel": _COLUMNS,
    ".*FeedForward/intermediate/bias": (MODEL_AXIS,),
    ".*FeedForward/output/kernel": _ROWS,
    "Embedding-Token/embeddings": _COLUMNS,
    "Embedding-Position/embeddings": _COLUMNS,
    "MLM-Dense/kernel": _COLUMNS,
}
# variables of the package's models that are large by size yet replicated on purpose
_REPLICATED = (".*/projection",)  # Performer's random features (not trained)


class DistributionError(ValueError):
    """A distribution that cannot run as asked; the message is one line with the fix."""


def layout_rules():
    """``{path regex: axes}`` of :func:`layout_map` (``keras.distribution.LayoutMap`` keys are
    matched with ``re.fullmatch`` against ``variable.path``)."""
    return dict(_RULES)


@dataclasses.dataclass(frozen=True)
class DistributionSpec:
    """What ``--distribution`` asked for: ``data`` (every device on the batch axis),
    ``model:N`` (N devices a model replica) or ``B,N`` (a B x N mesh)."""

    text: str
    batch: int = None  # None: the devices left after the model axis
    model: int = 1

    @property
    def parallel(self):
        return "data" if self.model == 1 else "model"

    def mesh_shape(self, device_count):
        """``(batch, model)`` axis sizes over ``device_count`` devices; DistributionError when
        the mesh does not divide them."""
        if device_count % self.model:
            raise DistributionError(
                f"--distribution {self.text}: a model axis of {self.model} does not divide the "
                f"{device_count} devices; give a divisor of {device_count}")
        batch = device_count // self.model if self.batch is None else self.batch
        if batch * self.model != device_count:
            raise DistributionError(
                f"--distribution {self.text}: a {batch} x {self.model} mesh needs {batch * self.model} "
                f"devices but there are {device_count}; give B,N with B x N = {device_count}")
        return batch, self.model


def parse_distribution(text):
    """The :class:`DistributionSpec` of ``data``, ``model:N`` or ``B,N``; DistributionError
    in one line for anything else."""
    value = str(text).strip().lower()
    if value == "data":
        return DistributionSpec(value)
    match = re.fullmatch(r"model:(\d+)", value) or re.fullmatch(r"(\d+),(\d+)", value)
    numbers = [int(group) for group in match.groups()] if match else []
    if not numbers or min(numbers) < 1:
        raise DistributionError(f"--distribution {text}: give data, model:N or B,N (positive whole numbers), "
                                f"e.g. data, model:2, 2,4")
    if len(numbers) == 1:
        return DistributionSpec(value, model=numbers[0])
    return DistributionSpec(value, batch=numbers[0], model=numbers[1])


def check_backend(option="--distribution"):
    """DistributionError unless Keras runs on JAX (``keras.distribution`` is JAX-only)."""
    backend = keras.backend.backend()
    if backend != "jax":
        raise DistributionError(
            f"{option} needs the JAX backend (keras.distribution runs on JAX only) but Keras runs on "
            f"{backend}: run with KERAS_BACKEND=jax")


def _config_value(config, *names):
    for name in names:
        if config.get(name) is not None:
            return int(config[name])
    return None


def check_model_axis(config, model_axis, what="the model"):
    """DistributionError when heads, key/value heads, the hidden or the feed-forward size of
    ``config`` (HF or GPT-2 key names) are not divisible by the model axis."""
    sizes = {"attention heads": _config_value(config, "num_attention_heads", "n_head"),
             "key/value heads": _config_value(config, "num_key_value_heads"),
             "hidden size": _config_value(config, "hidden_size", "n_embd"),
             "feed-forward size": _config_value(config, "intermediate_size", "n_inner")}
    for name, size in sizes.items():
        if size is not None and size % model_axis:
            raise DistributionError(
                f"{what} has {size} {name}, not divisible by the model axis of {model_axis}: "
                f"give a model axis that divides {size} (e.g. --distribution model:{math.gcd(size, model_axis)})")


def device_mesh(spec, devices=None):
    """A ``keras.distribution.DeviceMesh`` ``(batch, model)`` over ``devices`` (default: every
    device of every process)."""
    devices = devices or keras.distribution.list_devices()
    shape = spec.mesh_shape(len(devices))
    return keras.distribution.DeviceMesh(shape, [BATCH_AXIS, MODEL_AXIS], devices)


def layout_map(model_or_config, mesh):
    """The package's ``keras.distribution.LayoutMap`` for a BERT / GPT-2 / CPM-LM / Xiangqi GPT
    (softmax, Performer or Taylor attention) over ``mesh``; DistributionError when the model's
    heads or sizes do not divide the mesh's model axis."""
    config = getattr(model_or_config, "config", model_or_config)
    if isinstance(config, dict):
        check_model_axis(config, mesh.shape[list(mesh.axis_names).index(MODEL_AXIS)])
    layouts = keras.distribution.LayoutMap(mesh)
    for pattern, axes in _RULES.items():
        layouts[pattern] = keras.distribution.TensorLayout(axes, mesh)
    return layouts


def uncovered_variables(model, layouts):
    """Paths of ``model``'s large variables (rank >= 2, at least :data:`LARGE_VARIABLE` values)
    that ``layouts`` gives no layout, apart from the ones replicated on purpose."""
    missing = []
    for variable in model.weights:
        large = len(variable.shape) >= 2 and int(np.prod(variable.shape)) >= LARGE_VARIABLE
        kept = any(re.fullmatch(pattern, variable.path) for pattern in _REPLICATED)
        if large and not kept and layouts[variable.path] is None:
            missing.append(variable.path)
    return missing


def check_layout_coverage(model, layouts):
    """DistributionError naming the first large variable ``layouts`` does not cover."""
    missing = uncovered_variables(model, layouts)
    if missing:
        raise DistributionError(
            f"the layout map gives no layout to {len(missing)} large variable(s), e.g. '{missing[0]}' "
            f"(a renamed layer?): it would be replicated on every device; add a rule for it to "
            f"models.distribution.layout_map")


def make_distribution(spec, config=None, devices=None):
    """``DataParallel`` (``spec.model == 1``) or ``ModelParallel`` with :func:`layout_map` for
    a model of ``config``, over ``devices`` (default: all); the batch is split along ``batch``.
    Each process feeds its own rows (:func:`process_share`), so Keras' dataset auto-sharding is off."""
    check_backend()
    mesh = device_mesh(spec, devices)
    if spec.model == 1:  # a 1-D mesh: Keras' DataParallel expects one
        flat = keras.distribution.DeviceMesh((mesh.devices.size,), [BATCH_AXIS], mesh.devices.reshape(-1))
        return keras.distribution.DataParallel(device_mesh=flat, auto_shard_dataset=False)
    return keras.distribution.ModelParallel(layout_map=layout_map(config or {}, mesh), batch_dim_name=BATCH_AXIS,
                                            auto_shard_dataset=False)


def batch_axis_size(distribution):
    mesh = distribution.device_mesh
    return mesh.shape[list(mesh.axis_names).index(BATCH_AXIS)]


def check_batch(distribution, batch_size, option="--batch-size"):
    """DistributionError when the global batch does not split evenly over the batch axis (and so
    over the processes)."""
    parts = batch_axis_size(distribution)
    processes = process_count()
    if batch_size % parts or batch_size % processes:
        need = math.lcm(parts, processes)
        raise DistributionError(
            f"{option} {batch_size} does not split over the batch axis of {parts} devices"
            f"{f' and {processes} processes' if processes > 1 else ''}: give a multiple of {need}")


def process_count():
    """How many processes the run has (``jax.process_count()``; 1 off JAX)."""
    if keras.backend.backend() != "jax":
        return 1
    import jax

    return jax.process_count()


def process_index():
    """This process's number, 0 first (``jax.process_index()``; 0 off JAX)."""
    if keras.backend.backend() != "jax":
        return 0
    import jax

    return jax.process_index()


def is_chief():
    """True in process 0 (or the only process): the one that writes checkpoints, logs and plots."""
    return process_index() == 0


def local_rows(batch_size):
    """The slice of a global batch's rows this process feeds (``fit`` joins the processes'
    parts into the global batch: ``jax.make_array_from_process_local_data``)."""
    count, index = process_count(), process_index()
    share = batch_size // count
    return slice(index * share, (index + 1) * share)


def local_part(batch, rows):
    """``batch`` (arrays, or tuples / lists / dicts of them) cut to ``rows``."""
    if isinstance(batch, dict):
        return {key: local_part(value, rows) for key, value in batch.items()}
    if isinstance(batch, (tuple, list)):
        return type(batch)(local_part(value, rows) for value in batch)
    return batch if batch is None else batch[rows]


def _first_array(batch):
    while isinstance(batch, (tuple, list, dict)):
        batch = next(iter(batch.values())) if isinstance(batch, dict) else batch[0]
    return batch


def process_share(batch):
    """This process's rows of a global ``batch`` (the whole of it in a one-process run)."""
    if batch is None or process_count() == 1:
        return batch
    return local_part(batch, local_rows(len(_first_array(batch))))


def even_rows(batch):
    """``batch`` cut to a whole number of rows a device of the batch axis (the last rows of a
    validation set that would not split evenly are left out); unchanged without a distribution."""
    distribution = keras.distribution.distribution()
    if batch is None or distribution is None:
        return batch
    parts = batch_axis_size(distribution)
    rows = len(_first_array(batch))
    return batch if rows % parts == 0 else local_part(batch, slice(0, rows - rows % parts))


def evaluation_share(batch):
    """What this process evaluates of a whole evaluation set: :func:`even_rows`, then its
    :func:`process_share`."""
    return process_share(even_rows(batch))


def local_batch_size(batch_size):
    """The rows of a global batch of ``batch_size`` that one process feeds."""
    return batch_size // process_count()


def check_distributed_model(model):
    """Under a ``ModelParallel`` distribution, :func:`check_layout_coverage` of the built ``model``
    against the distribution's layout map; nothing otherwise."""
    distribution = keras.distribution.distribution()
    if isinstance(distribution, keras.distribution.ModelParallel):
        check_layout_coverage(model, distribution._layout_map)


def process_settings(coordinator=None, num_processes=None, process_id=None, environ=None):
    """``(coordinator, count, index)`` from the options, else from ``KERAS_DISTRIBUTION_JOB_ADDRESSES``
    / ``KERAS_DISTRIBUTION_NUM_PROCESSES`` / ``KERAS_DISTRIBUTION_PROCESS_ID`` (what
    ``keras.distribution.initialize`` reads); None when neither asks for several processes."""
    environ = os.environ if environ is None else environ
    coordinator = coordinator or environ.get("KERAS_DISTRIBUTION_JOB_ADDRESSES")
    count = num_processes if num_processes is not None else environ.get("KERAS_DISTRIBUTION_NUM_PROCESSES")
    index = process_id if process_id is not None else environ.get("KERAS_DISTRIBUTION_PROCESS_ID")
    given = [value is not None for value in (coordinator, count, index)]
    if not any(given):
        return None
    if not all(given):
        raise DistributionError("give all of --coordinator HOST:PORT, --num-processes P and --process-id I "
                                "(or none, for one process)")
    count, index = int(count), int(index)
    if count < 1 or not 0 <= index < count:
        raise DistributionError(f"--process-id {index} with --num-processes {count}: give 0 <= I < P")
    if not re.fullmatch(r"[^\s:,]+:\d+", coordinator.split(",")[0]):
        raise DistributionError(f"--coordinator {coordinator}: give HOST:PORT, e.g. 127.0.0.1:12345")
    return coordinator, count, index


def initialize_processes(coordinator=None, num_processes=None, process_id=None):
    """``keras.distribution.initialize`` for a multi-process run (see :func:`process_settings`);
    nothing for one process. On CPU the processes' collectives go through gloo."""
    settings = process_settings(coordinator, num_processes, process_id)
    if settings is None:
        return False
    check_backend("--coordinator")
    import jax

    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    keras.distribution.initialize(*settings)
    return True


def setup_distribution(text, config=None, batch_size=None, coordinator=None, num_processes=None,
                       process_id=None):
    """What a training script does for ``--distribution TEXT``: start the processes, make the
    distribution for a model of ``config``, check the batch, set it globally (models built from
    now on are distributed). Returns it, or None when ``text`` is None."""
    if text is None:
        if process_settings(coordinator, num_processes, process_id) is not None:
            raise DistributionError("--coordinator / --num-processes / --process-id need --distribution")
        return None
    spec = parse_distribution(text)
    check_backend()  # before the processes meet (make_distribution checks again, for direct calls)
    initialize_processes(coordinator, num_processes, process_id)
    distribution = make_distribution(spec, config)
    if batch_size is not None:
        check_batch(distribution, batch_size)
    keras.distribution.set_distribution(distribution)
    return distribution


@contextlib.contextmanager
def outside_distribution():
    """No distribution set inside (what one process does alone, e.g. writing a checkpoint: Keras'
    saving builds a throw-away optimizer, whose variables must not wait on the other processes)."""
    current = keras.distribution.distribution()
    keras.distribution.set_distribution(None)
    try:
        yield
    finally:
        keras.distribution.set_distribution(current)


def variable_specs(model):
    """``{variable path: PartitionSpec}`` of a built model's variables as they lie on the
    devices (what the layout map made of them)."""
    return {variable.path: variable.value.sharding.spec for variable in model.weights
            if hasattr(variable.value, "sharding") and hasattr(variable.value.sharding, "spec")}


__all__ = ["BATCH_AXIS", "MODEL_AXIS", "DistributionError", "DistributionSpec", "parse_distribution",
           "check_backend", "check_model_axis", "device_mesh", "layout_map", "layout_rules",
           "uncovered_variables", "check_layout_coverage", "make_distribution", "check_batch", "process_count",
           "process_index", "is_chief", "local_rows", "local_part", "process_share", "even_rows", "evaluation_share", "local_batch_size",
           "check_distributed_model", "process_settings", "initialize_processes",
           "setup_distribution", "outside_distribution", "variable_specs"]
