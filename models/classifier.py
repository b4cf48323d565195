"""A text classifier on any BERT checkpoint: the backbone of :func:`models.build_transformer_model`
(Hugging Face folder, Google/bert4keras TF checkpoint, ``.weights.h5``, or a saved ``.keras``
model), the pooled text (the ``[CLS]`` hidden state, or the mean over the real tokens,
padding left out), dropout and a dense softmax head, as one :class:`TransformerModel`. It
holds only layers and ops of Keras and of this package, so ``keras.saving.load_model`` reopens
it in a fresh process after ``import models`` (``model.transformer`` rebuilt, the same
predictions).

Layer-wise learning-rate decay (:class:`LayerwiseAdamW`): the head learns at the full rate,
transformer block ``i`` (0 = lowest) of ``L`` at ``decay ** (L - i)`` times it, the embeddings
at ``decay ** (L + 1)``. Keras optimizers have one learning rate, and Adam is invariant to
the scale of a gradient, so scaling the gradients per variable (in a ``train_step``) does
nothing: measured, one AdamW step with the gradients scaled by ``0.5 ** (L + 1 - depth)``
moved the embeddings 0.99996 times as far as the head (0.125 wanted). The factor is therefore
applied where Adam turns the gradient into an update: ``update_step(gradient, variable,
learning_rate)``, the hook Keras documents for custom optimizers, gets the learning rate
times the variable's factor (found by the variable's index, as Adam finds its moments); the
same step then moved the embeddings 0.125 and the top block 0.500 times as far as the head,
on TensorFlow and JAX alike. It costs nothing measurable (a 6-layer, 384-wide BERT, batch 16
x 64 tokens on CPU: 0.66-0.72 s a step against 0.70-0.78 s for AdamW). The decoupled weight
decay keeps Keras' one rate, ``lr * weight_decay`` for every weight (biases and LayerNorm
excluded): a per-layer rate would differ by at most ``lr * weight_decay * steps`` of a weight,
2.6e-4 for 1300 steps at lr 2e-5 and weight decay 0.01.

>>> config = {"vocab_size": 50, "hidden_size": 8, "num_hidden_layers": 2, "num_attention_heads": 2}
>>> model = build_classifier(config, None, num_classes=3, pooling="mean")
>>> model.predict([[[2, 7, 3, 0]], [[0, 0, 0, 0]]], verbose=0).shape
(1, 3)
"""

import re

import keras
from keras import ops

from models.builder import build_transformer_model
from models.training import make_optimizer, warmup_decay_schedule
from models.transformer_model import TransformerModel
from toolkit.checkpoints import CheckpointError
from toolkit.classification_data import POOLINGS

NO_WEIGHT_DECAY = ("bias", "gamma", "beta")
_BLOCK = re.compile(r"(?:^|/)Transformer-(\d+)-")
_EMBEDDING = re.compile(r"(?:^|/)Embedding-")


def build_classifier(backbone_config, checkpoint=None, num_classes=2, pooling="cls", hierarchical=None,
                     max_length=None, dropout=0.1, **kwargs):
    """The classifier (a :class:`TransformerModel`; inputs those of the BERT backbone, output
    the ``(batch, num_classes)`` class probabilities).

    Args:
        backbone_config: the BERT config (path or dict; see ``build_transformer_model``);
            None for a ``.keras`` checkpoint (its own settings are used).
        checkpoint: weights of the backbone (None: random), any format the builder reads, or
            a model saved by ``model.save('x.keras')`` (its backbone layers are copied by name).
        pooling: ``'cls'`` (the first token's hidden state) or ``'mean'`` (the mean over the
            tokens that are not padding).
        hierarchical / max_length / **kwargs: ``hierarchical_position``, ``max_length`` and
            config overrides of ``build_transformer_model``.
    """
    if pooling not in POOLINGS:
        raise ValueError(f"pooling={pooling!r}: give one of {POOLINGS}")
    if int(num_classes) < 2:
        raise ValueError(f"num_classes={num_classes}: a classifier needs at least two classes")
    backbone = backbone_model(backbone_config, checkpoint, hierarchical_position=hierarchical, max_length=max_length,
                              **kwargs)
    transformer = backbone.transformer
    sequence, token_ids = backbone.outputs[0], backbone.inputs[0]
    if pooling == "cls":
        pooled = sequence[:, 0]
    else:
        real = ops.not_equal(token_ids, transformer.pad_token_id)
        pooled = keras.layers.GlobalAveragePooling1D(name="Classifier-Mean-Pooling")(sequence, mask=real)
    pooled = keras.layers.Dropout(dropout, name="Classifier-Dropout")(pooled)
    probabilities = keras.layers.Dense(int(num_classes), activation="softmax", name="Classifier-Dense",
                                       kernel_initializer=transformer.initializer)(pooled)
    model = TransformerModel(inputs=backbone.inputs, outputs=probabilities, name="classifier")
    model.transformer = transformer
    transformer.model = model
    return model


def backbone_model(config, checkpoint=None, **builder_kwargs):
    """The BERT encoder (sequence output) of ``config`` + ``checkpoint``; for a ``.keras``
    checkpoint, built from the saved model's settings with its weights copied layer by layer."""
    if checkpoint is None or not str(checkpoint).endswith(".keras"):
        return build_transformer_model(config, checkpoint, model="bert", **builder_kwargs)
    saved = keras.saving.load_model(checkpoint, compile=False)
    if getattr(saved, "transformer", None) is None or saved.transformer.model_type != "bert":
        raise CheckpointError(f"checkpoint '{checkpoint}' is not a BERT saved by this package (a model of "
                              f"build_transformer_model(..., model='bert') or of build_classifier)")
    settings = saved.transformer.get_config()
    backbone = build_transformer_model(dict(settings, **(config or {})), None, model="bert",
                                       attention=settings["attention"],
                                       attention_kwargs=settings["attention_kwargs"], **builder_kwargs)
    saved_layers = {layer.name: layer for layer in saved.layers}
    for layer in backbone.layers:
        if layer.weights and layer.name not in saved_layers:
            raise CheckpointError(f"checkpoint '{checkpoint}' has no layer '{layer.name}' of the BERT it describes")
        if layer.weights:
            layer.set_weights(saved_layers[layer.name].get_weights())
    return backbone


# ------------------------------------------------------------ the optimizer
def layer_depth(path, num_layers):
    """0 for the embeddings, ``i + 1`` for transformer block ``i``, ``num_layers + 1`` for the
    rest (pooler, head) of a weight ``path`` such as ``'Transformer-3-FeedForward/kernel'``."""
    block = _BLOCK.search(path)
    if block:
        return int(block.group(1)) + 1
    return 0 if _EMBEDDING.search(path) else num_layers + 1


@keras.saving.register_keras_serializable(package="keras_longctx")
class LayerwiseAdamW(keras.optimizers.AdamW):
    """AdamW whose learning rate is ``layer_decay ** (num_layers + 1 - depth)`` times the
    schedule's for each variable (:func:`layer_depth`; see the module docstring)."""

    def __init__(self, layer_decay=1.0, num_layers=12, **kwargs):
        super().__init__(**kwargs)
        self.layer_decay, self.num_layers = float(layer_decay), int(num_layers)
        self.lr_scales = []

    def build(self, variables):
        super().build(variables)
        self.lr_scales = [self.layer_decay ** (self.num_layers + 1 - layer_depth(variable.path, self.num_layers))
                          for variable in variables]

    def update_step(self, gradient, variable, learning_rate):
        scale = self.lr_scales[self._get_variable_index(variable)]
        super().update_step(gradient, variable, ops.cast(learning_rate, variable.dtype) * scale)

    def get_config(self):
        return dict(super().get_config(), layer_decay=self.layer_decay, num_layers=self.num_layers)


def classifier_optimizer(learning_rate, total_steps, warmup_steps=None, weight_decay=0.01, layerwise_decay=None,
                         num_layers=None):
    """AdamW with linear warmup and linear decay to 0 (BERT's fine-tuning schedule), gradients
    clipped to norm 1, no weight decay on biases and LayerNorm; ``layerwise_decay`` (a factor
    in (0, 1), with the backbone's ``num_layers``) gives :class:`LayerwiseAdamW`, None the
    plain learning rate."""
    if layerwise_decay is None or layerwise_decay == 1:
        optimizer = make_optimizer(learning_rate, total_steps, warmup_steps, decay="linear", min_lr_ratio=0.0,
                                   weight_decay=weight_decay)
    else:
        schedule = warmup_decay_schedule(learning_rate, total_steps, warmup_steps, decay="linear", min_ratio=0.0)
        optimizer = LayerwiseAdamW(layerwise_decay, num_layers, learning_rate=schedule, weight_decay=weight_decay,
                                   clipnorm=1.0)
    optimizer.exclude_from_weight_decay(var_names=list(NO_WEIGHT_DECAY))
    return optimizer


def compile_classifier(model, optimizer):
    """Sparse categorical cross-entropy on the class index, accuracy as the metric; both
    weighted by the batches' sample weights when they have some (the rows that
    :class:`models.length_buckets.LengthBuckets` adds to split a batch over devices weigh 0,
    and the loss is the mean over the rows that count)."""
    loss = keras.losses.SparseCategoricalCrossentropy(reduction="mean_with_sample_weight")
    model.compile(optimizer=optimizer, loss=loss, weighted_metrics=["accuracy"])
    return model


__all__ = ["build_classifier", "backbone_model", "layer_depth", "LayerwiseAdamW", "classifier_optimizer",
           "compile_classifier", "POOLINGS"]
