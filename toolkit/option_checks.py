"""One-line checks of command-line style settings (framework-free), shared by the scripts'
argument checks and the option dataclasses of the training and fine-tuning runs."""


def check_minimums(options, minimums, error=ValueError):
    """Raise ``error("--name must be >= minimum, got value")`` for the first ``(name, minimum)``
    of ``minimums`` whose attribute of ``options`` is below it (or NaN); None means unset and passes.
    ``name`` is the attribute (``batch_size``) or the option (``batch-size``)."""
    for name, minimum in minimums:
        value = getattr(options, name.replace("-", "_"))
        if value is not None and not value >= minimum:
            raise error(f"--{name.replace('_', '-')} must be >= {minimum}, got {value}")
