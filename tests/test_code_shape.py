"""The layout rules of the design card, checked on the source: scripts only parse
arguments and call the library (at most 250 lines, no sys.path edits, no script
importing another but the shared ``scripts/_common.py``), functions of at most 60
lines of code (docstrings excluded), no one-letter module aliases, dependencies
pointing one way (scripts -> models -> layers -> toolkit), tests that import no
script's internals."""

import ast
import os

import pytest

from tests.helpers import ROOT

PACKAGES = ("toolkit", "layers", "models")
RANK = {"toolkit": 0, "layers": 1, "models": 2, "scripts": 3}
MAX_FUNCTION_LINES = 60
MAX_SCRIPT_LINES = 250


def _python_files(*folders):
    for folder in folders:
        for directory, _, names in os.walk(os.path.join(ROOT, folder)):
            for name in sorted(names):
                if name.endswith(".py"):
                    yield os.path.relpath(os.path.join(directory, name), ROOT)


def _tree(path):
    with open(os.path.join(ROOT, path), encoding="utf-8") as handle:
        return ast.parse(handle.read(), path)


def _code_lines(function):
    """Lines of a function that hold code: its span minus its docstring and blank/comment lines."""
    with open(function.path, encoding="utf-8") as handle:
        lines = handle.read().splitlines()[function.lineno - 1:function.end_lineno]
    body = function.body
    skip = set()
    if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant) \
            and isinstance(body[0].value.value, str):
        skip = set(range(body[0].lineno, body[0].end_lineno + 1))
    return sum(1 for number, line in enumerate(lines, function.lineno)
               if number not in skip and line.strip() and not line.strip().startswith("#"))


def _functions(path):
    for node in ast.walk(_tree(path)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            node.path = os.path.join(ROOT, path)
            yield node


def _imported_modules(path):
    for node in ast.walk(_tree(path)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, alias.asname
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                yield f"{node.module}.{alias.name}", None


def test_functions_are_at_most_60_lines_of_code():
    long = [f"{path}:{function.lineno} {function.name} ({_code_lines(function)} lines)"
            for path in _python_files(*PACKAGES, "scripts") for function in _functions(path)
            if _code_lines(function) > MAX_FUNCTION_LINES]
    assert not long, "functions over 60 lines of code:\n" + "\n".join(long)


def test_scripts_are_short_and_edit_no_sys_path():
    problems = []
    for path in _python_files("scripts"):
        with open(os.path.join(ROOT, path), encoding="utf-8") as handle:
            text = handle.read()
        if len(text.splitlines()) > MAX_SCRIPT_LINES:
            problems.append(f"{path}: {len(text.splitlines())} lines (at most {MAX_SCRIPT_LINES})")
        if "sys.path.insert" in text or "sys.path.append" in text:
            problems.append(f"{path}: edits sys.path (the editable install makes the packages importable)")
    assert not problems, "\n".join(problems)


def test_no_script_imports_another_script():
    scripts = {os.path.splitext(os.path.basename(p))[0] for p in _python_files("scripts")} - {"_common", "__init__"}
    problems = [f"{path} imports {module}" for path in _python_files("scripts")
                for module, _ in _imported_modules(path)
                if module.split(".")[0] in scripts
                or module.startswith("scripts.") and module.split(".")[1] in scripts]
    assert not problems, "\n".join(problems)


def test_no_one_letter_module_aliases():
    problems = [f"{path}: import {module} as {alias}" for path in _python_files(*PACKAGES, "scripts", "tests")
                for module, alias in _imported_modules(path) if alias is not None and len(alias) == 1]
    assert not problems, "\n".join(problems)


def test_dependencies_point_one_way():
    problems = []
    for path in _python_files(*PACKAGES):
        own = path.split(os.sep)[0]
        for module, _ in _imported_modules(path):
            top = module.split(".")[0]
            if top in RANK and RANK[top] > RANK[own]:
                problems.append(f"{path} imports {module} ({own} must not import {top})")
    assert not problems, "\n".join(problems)


def test_tests_import_no_script_internals():
    problems = []
    for path in _python_files("tests"):
        if path == os.path.join("tests", "test_code_shape.py"):
            continue
        with open(os.path.join(ROOT, path), encoding="utf-8") as handle:
            text = handle.read()
        if "spec_from_file_location" in text:
            problems.append(f"{path}: loads a script as a module (run it as a subprocess, or test the library)")
        for module, _ in _imported_modules(path):
            parts = module.split(".")
            if parts[0] == "scripts" and parts[1:2] != ["_common"]:  # the shared CLI helper may be tested
                problems.append(f"{path} imports {module}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("rule", [test_functions_are_at_most_60_lines_of_code])
def test_the_line_counter_counts_code_not_docstrings(rule, tmp_path):
    source = 'def f():\n    """doc\n    more doc\n    """\n    # comment\n\n    return 1\n'
    node = ast.parse(source).body[0]
    path = tmp_path / "f.py"
    path.write_text(source)
    node.path = str(path)
    assert _code_lines(node) == 2
