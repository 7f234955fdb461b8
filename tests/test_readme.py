"""The README and the pages of docs/ hold as written.

Every ```bash command of README.md, then of the pages docs/*.md (in name order; a page may use
the run the README's `kvae fit` made), runs in the order written, in one fresh `git clone` of
this repository with a `shared` folder beside it (a link to the real ../shared, so that
../shared/data/mnist resolves as on this machine), through the `kvae` of the interpreter that
runs the tests. Every ```python snippet runs on its own in a fresh
process from the clone's root. The commands are read from the markdown, so a command added to
a page is tested without touching this file; PLAN below says which ones are shortened, how,
and which are skipped, and why. A command fails its test when it exits non-zero, prints a
traceback, or does not write the file (--out) or folder (--output) it names. After all the
commands the clone must be as clean as `git status` sees it: outputs go where .gitignore
expects them and nothing tracked (the shipped model) changes.
"""

import dataclasses
import os
import pathlib
import re
import shlex
import subprocess
import sys

import pytest

REPOSITORY = pathlib.Path(__file__).resolve().parents[1]
DOCUMENTS = ["README.md"] + sorted(f"docs/{page.name}" for page in
                                   (REPOSITORY / "docs").glob("*.md"))
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)
SHELL_LANGUAGES = ("bash", "sh", "shell", "console")
# Each command or snippet starts TensorFlow (10 to 30 s on 2 busy cores). The README's quick
# start and its snippet run in every test run; a command that trains, evaluates or exports
# takes minutes: it and every command after it (which may read what it wrote) carry the
# integration marker, as do the snippets of the docs/ pages.
SLOW_COMMANDS = ("kvae fit", "kvae evaluate", "kvae export")


@dataclasses.dataclass(frozen=True)
class Plan:
    """How the test runs one command: ``replace`` (old, new) pairs applied to its text,
    ``skip`` a reason not to run it."""

    replace: tuple = ()
    skip: str = ""


def shortened(*pairs):
    return Plan(replace=tuple(zip(pairs[::2], pairs[1::2])))


MNIST = "--dataset mnist --data-dir ../shared/data/mnist"
# Command as written (whitespace collapsed) -> how the test runs it. Commands not listed run
# exactly as written.
PLAN = {
    # README.md
    'pip install -e ".[test]"': Plan(skip="the tests run inside the installed package"),
    "python -m pytest -q -n 2 --dist loadfile": Plan(skip="the command that runs this test"),
    "kvae fit --preset burda-mnist --data-dir ../shared/data/mnist --seed 0 --output "
    "runs/mnist-burda": Plan(skip="121 epochs, about 6 hours; tests/test_shipped_model.py "
                                  "trains its first epoch"),
    f"kvae fit {MNIST} --epochs 10": shortened("--epochs 10", "--epochs 1"),
    "kvae fit --dataset mnist": Plan(skip="downloads MNIST; this machine is offline"),
    "kvae evaluate runs/mnist-bernoulli-mlp": Plan(),
    "kvae reconstruct runs/mnist-bernoulli-mlp --num 16 --out pictures/reconstruct.png":
        Plan(),
    # docs/evaluation.md
    "kvae evaluate runs/mnist-bernoulli-mlp --iw-samples 5000": shortened(
        "--iw-samples 5000", "--iw-samples 5"),
    # docs/pictures.md
    f"kvae fit {MNIST} --latent-dim 2 --epochs 5 --output runs/mnist-2d": shortened(
        "--epochs 5", "--epochs 1"),
    # docs/scale-out.md
    "kvae fit --dataset mnist --strategy mirrored --batch-size 400 --precision mixed_float16":
        Plan(skip="needs several GPUs and the network"),
    'export TF_CONFIG=\'{"cluster": {"worker": ["host0:12345", "host1:12345"]}, "task": '
    '{"type": "worker", "index": 0}}\'': Plan(skip="needs two machines"),
    "kvae fit --dataset mnist --strategy multi-worker --output /shared/runs/mnist":
        Plan(skip="needs two machines"),
    # docs/training.md
    "kvae fit --preset burda-mnist --data-dir ../shared/data/mnist --objective iwae "
    "--iw-samples 5 --output runs/burda-iwae-5": shortened(
        "--output", "--epochs 1 --output"),
    f"kvae fit {MNIST} --epochs 3 --learning-rate-schedule constant --output runs/first":
        shortened("--epochs 3", "--epochs 1"),
    f"kvae fit {MNIST} --epochs 5 --learning-rate-schedule constant --output runs/first "
    f"--resume": shortened("--epochs 5", "--epochs 2"),
}


def normalised(command):
    return " ".join(command.split())


def fences(document, languages):
    """The code blocks of ``document`` (a path relative to the repository) in ``languages``."""
    text = (REPOSITORY / document).read_text()
    return [body for language, body in FENCE.findall(text) if language in languages]


def shell_commands(block):
    """The commands of a shell block: comment lines dropped, lines ending in a backslash
    joined, and a line whose quote is still open joined to the next."""
    commands, pending = [], ""
    for line in block.splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        pending += line.rstrip()
        if pending.endswith("\\"):
            pending = pending[:-1] + " "
            continue
        try:
            shlex.split(pending, comments=True)
        except ValueError:  # an open quote: the command goes on
            pending += "\n"
            continue
        commands.append(normalised(pending))
        pending = ""
    assert not pending, f"unterminated command: {pending!r}"
    return commands


def commands_of(document):
    return [command for block in fences(document, SHELL_LANGUAGES)
            for command in shell_commands(block)]


def all_commands():
    """(document, command) for every command of every page, in the order they run."""
    return [(document, command) for document in DOCUMENTS for command in commands_of(document)]


def command_cases():
    cases, slow = [], False
    for index, (document, command) in enumerate(all_commands()):
        slow = slow or command.startswith(SLOW_COMMANDS)
        marks = [pytest.mark.integration] if slow else []
        cases.append(pytest.param(index, id=f"{index}:{document}:{command[:60]}", marks=marks))
    return cases


def snippet_cases():
    return [pytest.param(document, index, id=f"{document}:python{index}",
                         marks=[] if document == "README.md" else [pytest.mark.integration])
            for document in DOCUMENTS
            for index, _ in enumerate(fences(document, ("python",)))]


def environment():
    """The user's environment: this interpreter's `kvae` first in PATH, none of the test
    suite's TensorFlow settings."""
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), env.get("PATH", "")])
    for name in ("TF_CPP_MIN_LOG_LEVEL", "KVAE_DEBUG", "TF_CONFIG"):
        env.pop(name, None)
    return env


def fresh_clone(parent):
    """A `git clone` of this repository in ``parent``/keras-vae, with ``parent``/shared
    linking to the real ../shared."""
    clone = parent / "keras-vae"
    subprocess.run(["git", "clone", "--quiet", str(REPOSITORY), str(clone)], check=True)
    (parent / "shared").symlink_to(REPOSITORY.parent / "shared", target_is_directory=True)
    return clone


def run(command, cwd):
    return subprocess.run(["bash", "-c", command], cwd=cwd, env=environment(),
                          capture_output=True, text=True)


class Reader:
    """A reader pasting every command in order into one clone; ``run_through(i)`` runs those
    before command i that have not run yet (so that a test selected alone finds what they
    wrote)."""

    def __init__(self, parent):
        self.commands = [command for _, command in all_commands()]
        self.clone = fresh_clone(parent)
        self.done = 0

    def run_through(self, index):
        """Runs commands up to and including ``index``; the last one's result (None if
        skipped)."""
        result = None
        while self.done <= index:
            command = self.commands[self.done]
            plan = PLAN.get(command, Plan())
            result = None
            if not plan.skip:
                for old, new in plan.replace:
                    command = command.replace(old, new)
                result = run(command, self.clone)
            self.done += 1
        return result


@pytest.fixture(scope="module")
def reader(tmp_path_factory):
    return Reader(tmp_path_factory.mktemp("clone"))


def test_every_code_block_is_shell_or_python():
    for document in DOCUMENTS:
        text = (REPOSITORY / document).read_text()
        for language, _ in FENCE.findall(text):
            assert language in SHELL_LANGUAGES + ("python",), (
                f"{document}: a ```{language or '(no language)'} block is neither run nor "
                f"skipped by tests/test_readme.py; mark it bash or python")


def test_every_planned_command_is_still_in_the_docs():
    written = {command for _, command in all_commands()}
    stale = [command for command in PLAN if command not in written]
    assert not stale, f"PLAN lists commands no page holds any more: {stale}"
    for command, plan in PLAN.items():
        for old, _ in plan.replace:
            assert old in command, (command, old)


def test_the_readme_test_command_is_the_one_ci_runs():
    ci_commands = [line.strip() for line in (REPOSITORY / ".ci" / "run").read_text().splitlines()
                   if line.strip().startswith("python -m pytest")]
    assert ci_commands == [c for c in commands_of("README.md") if c.startswith("python -m pytest")]


@pytest.mark.parametrize("index", command_cases())
def test_command_works_as_written(reader, index):
    command = reader.commands[index]
    plan = PLAN.get(command, Plan())
    if plan.skip:
        reader.run_through(index)
        pytest.skip(plan.skip)
    result = reader.run_through(index)
    assert result.returncode == 0, f"{command}\n{result.stderr[-3000:]}"
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    arguments = shlex.split(command)
    for option in ("--out", "--output"):
        if option in arguments:
            written = reader.clone / arguments[arguments.index(option) + 1]
            assert written.exists(), f"{command} did not write {written}"
    if "--out" in arguments:
        assert arguments[arguments.index("--out") + 1].endswith(".png")
        assert (reader.clone / arguments[arguments.index("--out") + 1]).stat().st_size > 1000


@pytest.mark.integration
def test_the_commands_leave_nothing_for_git_to_see(reader):
    """Every output lands in a folder .gitignore ignores (runs/, pictures/, exports/), and no
    tracked file (the shipped model) is changed."""
    reader.run_through(len(reader.commands) - 1)
    status = subprocess.run(["git", "status", "--porcelain"], cwd=reader.clone,
                            capture_output=True, text=True, check=True).stdout
    assert status == "", status


@pytest.mark.parametrize("document, index", snippet_cases())
def test_python_snippet_runs_on_its_own(tmp_path_factory, document, index):
    snippet = fences(document, ("python",))[index]
    parent = tmp_path_factory.mktemp("snippet")
    clone = fresh_clone(parent)
    script = parent / "snippet.py"  # outside the clone: `import keras_vae` is the installed one
    script.write_text(snippet)
    result = subprocess.run([sys.executable, str(script)], cwd=clone, env=environment(),
                            capture_output=True, text=True)
    assert result.returncode == 0, f"{document}, python block {index}:\n{snippet}\n" \
                                   f"{result.stderr[-3000:]}"
