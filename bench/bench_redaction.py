"""Redaction speed on adversarial text: CPU seconds of `redact` per input at 20,000 characters (the API's
max_text_chars) and 128 KiB (the largest ingestion field), best of three.

    .venv/bin/python bench/bench_redaction.py                  # the current ml.text.redaction
    .venv/bin/python bench/bench_redaction.py --against 1cd152d  # and the redact of an older commit, beside it

The inputs are those of tests/ml/test_redaction.py (runs of colons, dots and digits, '@', base64, 'password is'
...). An older implementation gets a CPU budget per input (--limit, default 10 s) and shows ">limit" past it.
"""

from __future__ import annotations

import argparse
import importlib.util
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "ml"))

from test_redaction import ADVERSARIAL  # noqa: E402

from ml.text.redaction import redact  # noqa: E402


class _Timeout(Exception):
    pass


def _old_redact(rev: str) -> Callable[[str], str]:
    for path in ("ml/text/redaction.py", "ml/text/documents.py", "ml/text.py"):
        src = subprocess.run(["git", "show", f"{rev}:{path}"], cwd=ROOT, capture_output=True, text=True)
        if src.returncode == 0 and "def redact(" in src.stdout:
            tmp = Path(tempfile.mkdtemp()) / "old_redaction.py"
            tmp.write_text(src.stdout, encoding="utf-8")
            spec = importlib.util.spec_from_file_location("old_redaction", tmp)
            module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
            spec.loader.exec_module(module)  # type: ignore[union-attr]
            return module.redact
    raise SystemExit(f"no redact() in {rev}")


def _time(fn: Callable[[str], str], text: str, limit: float) -> str:
    def alarm(*_: object) -> None:
        raise _Timeout

    signal.signal(signal.SIGVTALRM, alarm)
    best = float("inf")
    for _ in range(3):
        signal.setitimer(signal.ITIMER_VIRTUAL, limit)
        start = time.process_time()
        try:
            fn(text)
        except _Timeout:
            return f">{limit:g}"
        finally:
            signal.setitimer(signal.ITIMER_VIRTUAL, 0)
        best = min(best, time.process_time() - start)
    return f"{best:.3f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--against", help="a git revision whose redact() is timed beside the current one")
    ap.add_argument("--limit", type=float, default=10.0, help="CPU seconds per input for the old redact")
    ap.add_argument("--sizes", default="20000,131072")
    args = ap.parse_args()
    old = _old_redact(args.against) if args.against else None
    sizes = [int(s) for s in args.sizes.split(",")]
    head = ["input"] + [f"now@{n}" for n in sizes] + ([f"{args.against}@{n}" for n in sizes] if old else [])
    print("\t".join(head))
    for name in sorted(ADVERSARIAL):
        texts = [ADVERSARIAL[name](n) for n in sizes]
        row = [name] + [_time(redact, t, 60.0) for t in texts]
        if old is not None:
            row += [_time(old, t, args.limit) for t in texts]
        print("\t".join(row), flush=True)


if __name__ == "__main__":
    main()
