"""Model builders of keras-longctx: ``build_transformer_model``, ``BERT``, ``GPT2``."""

from models.bert import BERT
from models.builder import build_transformer_model
from models.config import load_config
from models.gpt2 import GPT2
from models.transformer import Transformer, WeightSpec

__all__ = ["BERT", "GPT2", "Transformer", "WeightSpec", "build_transformer_model", "load_config"]
