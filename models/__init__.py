"""Model builders of keras-longctx: ``build_transformer_model``, ``BERT``, ``GPT2``."""

from toolkit import quiet_startup

quiet_startup.install()  # before keras imports TensorFlow: no start-up log on a CPU machine

from models.bert import BERT
from models.builder import build_transformer_model
from models.config import load_config
from models.gpt2 import GPT2
from models.quantization import is_quantized, quantize_model
from models.transformer import Transformer, WeightSpec
from models.transformer_model import TransformerModel

__all__ = ["BERT", "GPT2", "Transformer", "TransformerModel", "WeightSpec", "build_transformer_model", "is_quantized",
           "load_config", "quantize_model"]
