"""Static typing: the documentation's examples pass `mypy --strict` against
the importable (normally the installed) gocore, so the checked stubs are
the ones users get, and those stubs agree with the compiled modules.

- test_examples_typecheck: every ```python block of README.md and
  docs/*.md, plus tests/typing_api_usage.py (every public name used the way
  its stubs promise, misuses marked `# type: ignore[code]`), in ONE
  `mypy --strict` run with its cache in a temporary directory.
- test_examples_run: each of those blocks also runs, as a program, from a
  temporary directory (a typed example must also be a correct one).
- test_stubs_match_runtime: `mypy.stubtest` compares the stubs of the
  compiled modules (gocore/_*.pyi) with the objects they describe.

Skipping a block: put an HTML comment on the line (or lines) right before
its opening fence, which Markdown renders as nothing:

    <!-- mypy: skip -->     not type-checked (a fragment, or names left
                            undefined on purpose)
    <!-- run: skip -->      type-checked but not run (slow, needs input...)

A block marked `mypy: skip` is not run either. Other fences (```bash,
```go, plain ```) are never checked.

The mypy tests skip when mypy is not installed (`pip install ".[test]"`
installs it). They need the source tree's README.md and docs/ next to
tests/ (located from this file, so they also run from outside the source
tree against an installed wheel) and skip without them.
"""
from __future__ import annotations

import os
import re
import site
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

import pytest

import gocore

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
API_USAGE = Path(__file__).resolve().parent / "typing_api_usage.py"
MYPY_TIMEOUT = 300          # seconds; a cold mypy run takes 2-40 s

FENCE = re.compile(r"^```python[ \t]*$")
MARK = re.compile(r"^<!--\s*(mypy|run)\s*:\s*skip\s*-->$")


@dataclass
class Block:
    doc: Path
    line: int          # 1-based line of the first line of code (after the fence)
    code: str
    typecheck: bool
    run: bool

    @property
    def module(self) -> str:
        """A module name that says where the block comes from."""
        stem = re.sub(r"\W", "_", str(self.doc.relative_to(ROOT)))
        return f"{stem}_L{self.line}"


def extract_blocks(doc: Path) -> list[Block]:
    lines = doc.read_text(encoding="utf-8").splitlines()
    blocks = []
    i = 0
    while i < len(lines):
        if not FENCE.match(lines[i]):
            i += 1
            continue
        marks = set()
        j = i - 1
        while j >= 0 and MARK.match(lines[j].strip()):
            marks.add(MARK.match(lines[j].strip()).group(1))
            j -= 1
        end = i + 1
        while end < len(lines) and not lines[end].startswith("```"):
            end += 1
        assert end < len(lines), f"{doc}:{i + 1}: unterminated ```python block"
        code = "\n".join(lines[i + 1:end]) + "\n"
        typecheck = "mypy" not in marks
        blocks.append(Block(doc, i + 2, code, typecheck, typecheck and "run" not in marks))
        i = end + 1
    return blocks


def all_blocks() -> list[Block]:
    if not (ROOT / "README.md").is_file():
        pytest.skip(f"no README.md next to {Path(__file__).parent} (tests run without the source tree)")
    return [b for doc in DOCS for b in extract_blocks(doc)]


def gocore_env() -> dict[str, str]:
    """The environment for mypy and for the examples: the gocore they see is
    the one this interpreter imports. An installed gocore (site-packages)
    is found by mypy through its py.typed marker; another one (a source
    tree built in place, an editable install) is added to MYPYPATH, which
    must not name site-packages."""
    env = dict(os.environ)
    for var in ("MYPYPATH", "PYTHONPATH", "MYPY_CACHE_DIR"):
        env.pop(var, None)
    parent = Path(gocore.__file__).resolve().parent.parent
    installed = {Path(p).resolve() for p in
                 [*site.getsitepackages(), site.getusersitepackages(),
                  sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]}
    if parent not in installed:
        env["MYPYPATH"] = env["PYTHONPATH"] = str(parent)
    return env


def map_to_docs(output: str, files: dict[str, Block]) -> str:
    """Rewrite `README_md_L15.py:8: error...` as `README.md:22: error...`."""
    def sub(m: re.Match[str]) -> str:
        block = files.get(Path(m.group(1)).name)
        if block is None:
            return m.group(0)
        return f"{block.doc.relative_to(ROOT)}:{block.line + int(m.group(2)) - 1}:"
    return re.sub(r"^(\S+\.py):(\d+):", sub, output, flags=re.M)


@pytest.mark.timeout(MYPY_TIMEOUT + 60)
def test_examples_typecheck(tmp_path: Path) -> None:
    pytest.importorskip("mypy")
    blocks = [b for b in all_blocks() if b.typecheck]
    assert blocks, "README.md has no ```python block to check"
    src = tmp_path / "src"
    src.mkdir()
    files = {}
    for b in blocks:
        name = f"{b.module}.py"
        (src / name).write_text(b.code, encoding="utf-8")
        files[name] = b
    targets = [str(src / name) for name in files]
    if API_USAGE.is_file():
        targets.append(str(API_USAGE))
    config = tmp_path / "mypy.ini"        # ignore any mypy config around the tree
    config.write_text("[mypy]\n")
    p = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--config-file", str(config),
         "--cache-dir", str(tmp_path / "cache"), "--show-error-codes", *targets],
        cwd=tmp_path, env=gocore_env(), capture_output=True, text=True, timeout=MYPY_TIMEOUT)
    out = map_to_docs(p.stdout + p.stderr, files)
    assert p.returncode == 0, f"mypy --strict rejects {len(targets)} files:\n{out}"


@pytest.mark.timeout(200)
def test_examples_run(tmp_path: Path) -> None:
    blocks = [b for b in all_blocks() if b.run]
    if not blocks:
        pytest.skip("no runnable ```python block")
    env = gocore_env()
    env.pop("GOCORE_MAXPROCS", None)
    for b in blocks:
        prog = tmp_path / f"{b.module}.py"
        prog.write_text(b.code, encoding="utf-8")
        run_env = env
        if "find_leaks" in b.code and hasattr(sys, "_is_gil_enabled") and not sys._is_gil_enabled():
            # find_leaks() needs the GIL (docs/debugging.md): on a
            # free-threaded build its examples run as the docs say, GIL on
            run_env = dict(env, PYTHON_GIL="1")
        p = subprocess.run([sys.executable, str(prog)], cwd=tmp_path, env=run_env,
                           capture_output=True, text=True, timeout=60)
        where = f"{b.doc.relative_to(ROOT)}:{b.line}"
        assert p.returncode == 0, f"the example at {where} exited {p.returncode}:\n{p.stdout}\n{p.stderr}"


# Names stubtest reports that are not part of the typed API: Cython's
# module internals, the scheduler's private objects, go() (positional-only
# at runtime too: a METH_FASTCALL function with no introspectable
# signature), and the compiled classes being "disjoint bases" (PEP 800; not
# marked, so that older mypy versions read the stubs).
STUBTEST_ALLOWLIST = r"""
gocore\._\w+\.__test__
gocore\._sched\.__pyx_capi__
gocore\._sched\.(G|WAIT_REASONS|get_park_sentinel)
gocore\._sched\.go
gocore\._sync\.(_SyncBase|Mutex|RWMutex|WaitGroup|Once|Semaphore)
gocore\._time\.Timer
gocore\._net\.(_Fd|_Endpoint|Conn|Listener|PacketConn|_IoOp)
"""

# Python 3.13 gives a METH_NOARGS function the text signature "($self, /)";
# for Cython's module-level functions (__self__ is None) inspect then shows
# a `self` parameter they do not take.
if sys.version_info >= (3, 13):
    STUBTEST_ALLOWLIST += "gocore\\._sched\\.(gosched|num_goroutine|stats|metrics|_goroutine_info|_inspect_begin|_inspect_end|_on_async_g)\n"
    STUBTEST_ALLOWLIST += "gocore\\._sched\\.(_bubble_now|_bubble_wait|_bubble_wait_blocking)\ngocore\\._time\\._now\n"

STUBTEST_MODULES = ["gocore._chan", "gocore._sched", "gocore._sync", "gocore._time",
                    "gocore._atomic", "gocore.atomic", "gocore.context", "gocore.errgroup",
                    "gocore._debug", "gocore._net", "gocore.net"]


@pytest.mark.timeout(MYPY_TIMEOUT + 60)
def test_stubs_match_runtime(tmp_path: Path) -> None:
    pytest.importorskip("mypy.stubtest")
    allowlist = tmp_path / "allowlist.txt"
    allowlist.write_text(STUBTEST_ALLOWLIST)
    config = tmp_path / "mypy.ini"
    config.write_text("[mypy]\n")
    p = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", *STUBTEST_MODULES,
         "--mypy-config-file", str(config), "--allowlist", str(allowlist),
         "--ignore-unused-allowlist"],
        cwd=tmp_path, env=gocore_env(), capture_output=True, text=True, timeout=MYPY_TIMEOUT)
    assert p.returncode == 0, f"the stubs disagree with the runtime:\n{p.stdout}\n{p.stderr}"
