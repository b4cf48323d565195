"""Keras 3 layers of keras-longctx (one layer per module)."""

from toolkit import quiet_startup

quiet_startup.install()  # before keras imports TensorFlow: no start-up log on a CPU machine
from layers.activations import gelu_erf, gelu_tanh, get_activation
from layers.attention_masks import PaddingMask, UniLMMask
from layers.bias_add import BiasAdd
from layers.feed_forward import FeedForward
from layers.multi_head_attention import MultiHeadAttention
from layers.pooler import Pooler
from layers.position_embedding import PositionEmbedding
from layers.token_embedding import TokenEmbedding
from layers.linear_attention import linear_attention
from layers.performer_attention import PerformerAttention
from layers.taylor_attention import TaylorAttention
from layers.taylor_softmax import TaylorSoftmax, taylor_softmax_crossentropy

__all__ = [
    "BiasAdd",
    "FeedForward",
    "MultiHeadAttention",
    "PaddingMask",
    "Pooler",
    "PositionEmbedding",
    "TokenEmbedding",
    "UniLMMask",
    "gelu_erf",
    "gelu_tanh",
    "get_activation",
    "PerformerAttention",
    "TaylorAttention",
    "TaylorSoftmax",
    "linear_attention",
    "taylor_softmax_crossentropy",
]
