"""Backend-free machinery of keras-longctx: tokenizers, checkpoint I/O, generation,
data utilities, Xiangqi rules and records. Imports nothing from layers/ or models/."""
