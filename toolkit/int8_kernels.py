"""torch's int8 matrix products for Keras int8 weights, and TorchScript tracing of a decoding step.

Measured on this project's 2-core AVX-512 VNNI CPU (``scripts/bench_generate.py``), a batch-1
product with a 768 x 3072 int8 kernel takes: Keras' own int8 ``Dense`` (int8 x int8 on
TensorFlow or XLA) 0.5-2 ms, float32 0.2 ms, torch's fbgemm dynamic-quantized linear
(``torch.ao.nn.quantized.dynamic.Linear``) 0.035 ms. So the int8 decoder runs on Keras' torch
backend with fbgemm for every int8 product, and the decoding step is traced once per shape
with ``torch.jit.trace`` (Keras' eager layer calls cost more than the products themselves).

:func:`int8_linear` takes Keras' int8 format as it is: the kernel ``w_int8`` and one scale
``s`` per output unit, ``w ~ w_int8 / s``; fbgemm's per-channel weight scale is ``1 / s`` with
zero point 0, so the int8 values are the same bytes. fbgemm quantizes the inputs itself (8-bit,
one affine scale per call: Keras' per-row abs-max is the same for a batch-1 step) and returns
float32.

Example:

>>> import numpy as np
>>> kernel = np.array([[127, -64], [0, 127]], "int8")          # (in, out), Keras' layout
>>> linear = int8_linear(kernel, np.array([127.0, 127.0], "float32"))
>>> import torch
>>> np.round(linear(torch.tensor([[1.0, 2.0]])).numpy(), 2)      # [1, 1.496] up to the inputs' 8 bits
array([[1.01, 1.49]], dtype=float32)
"""

import contextlib
import warnings


def torch_module():
    """``torch``, or ImportError saying how to install it."""
    try:
        import torch
    except ImportError:
        raise ImportError("the fast int8 decoder needs torch (pip install torch; the Makefile pins it)") from None
    return torch


def int8_linear(kernel, scale, transposed=False):
    """An fbgemm int8 linear (a ``torch.nn.Module``, no bias) computing ``x @ (kernel / scale)``
    for Keras' int8 ``kernel`` ``(in, out)`` (``transposed=True``: ``(out, in)``, an
    ``Embedding`` table used as an output projection) and float ``scale`` ``(out,)``."""
    import numpy as np

    torch = torch_module()
    weight = np.ascontiguousarray(kernel if transposed else np.transpose(kernel))  # (out, in)
    if weight.dtype != np.int8 or weight.ndim != 2 or np.shape(scale) != (weight.shape[0],):
        raise ValueError(f"int8_linear needs an int8 matrix and one scale per output, got {weight.dtype} "
                         f"{weight.shape} and scale {np.shape(scale)}")
    with warnings.catch_warnings():  # torch 2.13 marks the quantized tensor API deprecated
        warnings.simplefilter("ignore")
        qweight = torch._make_per_channel_quantized_tensor(
            torch.from_numpy(weight), torch.from_numpy(1.0 / np.asarray(scale, "float64")),
            torch.zeros(weight.shape[0], dtype=torch.long), 0)
        linear = torch.ao.nn.quantized.dynamic.Linear(weight.shape[1], weight.shape[0], dtype=torch.qint8)
        linear.set_weight_bias(qweight, None)
    return linear


class TracedStep:
    """``fn(*args)`` traced by ``torch.jit.trace`` once per argument shapes (arguments:
    tensors, arrays or tuples of them), run under ``torch.inference_mode``. ``modules``: the
    torch modules ``fn`` calls (the int8 linears), registered so that tracing records them;
    ``parameters``: tensors ``fn`` reads, frozen (``requires_grad=False``) while tracing so
    that they become constants of the trace, then restored; ``tracing_context``: a
    context-manager factory entered while tracing."""

    def __init__(self, fn, modules=(), parameters=(), tracing_context=None):
        torch = torch_module()

        class Holder(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.kernels = torch.nn.ModuleList(list(modules))

            def forward(self, *args):
                return fn(*args)

        self.holder = Holder()
        self.parameters = list(parameters)
        self.tracing_context = tracing_context or contextlib.nullcontext
        self.traces = {}

    def __call__(self, *args):
        torch = torch_module()
        args = tuple(_as_tensors(arg) for arg in args)
        key = tuple(_shape(arg) for arg in args)
        with torch.inference_mode():
            if key not in self.traces:
                flags = [p.requires_grad for p in self.parameters]
                try:
                    for p in self.parameters:
                        p.requires_grad_(False)
                    with warnings.catch_warnings(), self.tracing_context():
                        warnings.simplefilter("ignore")
                        self.traces[key] = torch.jit.trace(self.holder, args, check_trace=False, strict=False)
                finally:
                    for p, flag in zip(self.parameters, flags):
                        p.requires_grad_(flag)
            return self.traces[key](*args)


def _as_tensors(arg):
    torch = torch_module()
    if isinstance(arg, (tuple, list)):
        return tuple(_as_tensors(part) for part in arg)
    return arg if torch.is_tensor(arg) else torch.as_tensor(arg)


def _shape(arg):
    if isinstance(arg, tuple):
        return tuple(_shape(part) for part in arg)
    return tuple(arg.shape), str(arg.dtype)
