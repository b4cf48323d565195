"""The small CLI helper shared by the command-line scripts: quiet TensorFlow start-up (the
GPUs stay visible), ``--help`` with defaults, ``--verbose``/``--write`` options and one-line errors.
``import _common`` works in a script run as ``python scripts/x.py`` (Python puts scripts/ on
sys.path); the packages are importable through the editable install."""

import argparse
import math
import os
import sys

from toolkit import quiet_startup
from toolkit.benchmarking import DOCS_MD
from toolkit.option_checks import check_minimums

VERBOSE = "--verbose" in sys.argv[1:] or os.environ.get("KERAS_LONGCTX_VERBOSE") == "1"
if VERBOSE:
    os.environ["KERAS_LONGCTX_VERBOSE"] = "1"
# TensorFlow's start-up log (CUDA probing on a CPU machine, "cuInit ... UNKNOWN ERROR (303)" among it)
# is dropped unless --verbose; a lower TF_CPP_MIN_LOG_LEVEL already in the environment (the Makefile and
# tests/conftest.py export 2) is raised to 3 too. See toolkit/quiet_startup.py.
quiet_startup.install(force_level=True)
os.environ.setdefault("HF_HUB_OFFLINE", "1")


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """``--help`` shows every option's default and keeps the description's examples as written.
    No ``(default: None)`` / ``(default: False)`` (unset options and flags), nor a second default
    where the help text already says it."""

    def _get_help_string(self, action):
        text = action.help or ""
        if action.default is None or action.default is False or "default" in text.lower():
            return text
        return super()._get_help_string(action)


class UsageError(ValueError):
    """A user's mistake, reported by :func:`run` as one line (no traceback)."""


def add_verbose(parser):
    """``--verbose``: TensorFlow's start-up log and full tracebacks (read before argparse, see VERBOSE)."""
    parser.add_argument("--verbose", action="store_true",
                        help="show TensorFlow's start-up log and full tracebacks of errors")
    return parser


def add_distribution(parser):
    """``--distribution`` and the multi-process options (keras.distribution on JAX; the library's
    models.distribution.setup_distribution reads them)."""
    group = parser.add_argument_group("several devices or hosts (KERAS_BACKEND=jax)")
    group.add_argument("--distribution", default=None, metavar="data|model:N|B,N",
                       help="data: data parallel over every device (the global --batch-size split over them); "
                            "model:N: N devices a model replica (Megatron-style layout map); B,N: a B x N mesh")
    group.add_argument("--coordinator", default=None, metavar="HOST:PORT",
                       help="several processes: the address of process 0 (or KERAS_DISTRIBUTION_JOB_ADDRESSES)")
    group.add_argument("--num-processes", type=int, default=None, metavar="P",
                       help="several processes: how many (or KERAS_DISTRIBUTION_NUM_PROCESSES)")
    group.add_argument("--process-id", type=int, default=None, metavar="I",
                       help="several processes: this one's number, 0 to P-1; only 0 writes checkpoints, logs "
                            "and plots (or KERAS_DISTRIBUTION_PROCESS_ID)")
    return parser


def add_write(parser, what):
    """``--write``: benchmarks print their table always and write ``what`` only when asked, into
    ``--md`` (default docs/benchmarks.md). The former ``--no-write`` is still accepted (hidden):
    not writing is the default now."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--write", action="store_true",
                       help=f"also write {what} (without it the table is only printed)")
    group.add_argument("--no-write", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--md", default=DOCS_MD, metavar="PATH",
                        help="--write: the Markdown file of the benchmark sections (default docs/benchmarks.md)")
    return parser


def check_at_least(args, minimum, *options):
    """A one-line UsageError for the first of ``options`` (``"repeats"`` for ``--repeats``) whose
    value is below ``minimum`` (unset options are skipped)."""
    check_minimums(args, [(option, minimum) for option in options], error=UsageError)


def check_long_text(tokens, alpha, min_tokens=3):
    """One-line UsageErrors for a document length below ``min_tokens`` ([CLS], one token, [SEP])
    and a hierarchical-position alpha outside (0, 1)."""
    if tokens < min_tokens:
        raise UsageError(f"--tokens must be >= {min_tokens} ([CLS], one token of text, [SEP]), got {tokens}")
    if not (0.0 < alpha < 1.0 and math.isfinite(alpha)):
        raise UsageError(f"--alpha must lie strictly between 0 and 1 (e.g. 0.4), got {alpha}: "
                         "positions use (p_i - alpha*p_0) / (1 - alpha)")


def user_errors():
    """Exception types that mean bad input, not a bug: reported in one line."""
    from toolkit.checkpoints import CheckpointError

    return (UsageError, CheckpointError, FileNotFoundError, IsADirectoryError, NotADirectoryError,
            PermissionError, UnicodeDecodeError, ValueError)


def run(main, argv=None):
    """Run ``main(argv)`` and exit with its return code (0 if it returns None or something that
    is not an int, e.g. results for tests); a user's mistake prints ``error: <message>`` (exit 2)
    and Ctrl-C prints ``interrupted`` (exit 130), without a traceback unless ``--verbose``."""
    try:
        code = main(argv)
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        sys.exit(130)
    except user_errors() as error:
        if VERBOSE:
            raise
        print(f"error: {one_line(error)}", file=sys.stderr)
        sys.exit(2)
    sys.exit(code if isinstance(code, int) else 0)


def one_line(error):
    """The first non-empty line of an exception's message (at most 500 characters)."""
    text = str(error).strip() or type(error).__name__
    first = next(line for line in text.splitlines() if line.strip())
    return first[:500]
