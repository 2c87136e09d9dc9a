"""Reading the YAML template files of the sample generators (`data/templates/*/*.yaml`).

A missing, unreadable or malformed template file stops the generator with one line naming the file (a
`SystemExit`, so `python data/generate.py` prints that line and exits 1, without a traceback).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import yaml

logger = logging.getLogger(__name__)

T = TypeVar("T")
ROOT = Path(__file__).resolve().parent.parent
# What a file must hold at its top level: `list` (a list), or the keys of a mapping (`()`: any mapping).
Shape = type[list[Any]] | tuple[str, ...]


def shown(path: Path) -> str:
    """`path` as the user knows it: relative to the repository when inside it (`data/templates/...`)."""
    try:
        return path.resolve().relative_to(ROOT).as_posix()
    except ValueError:
        return str(path)


def template_error(path: Path, problem: str) -> SystemExit:
    """One line naming the template file and what is wrong with it."""
    return SystemExit(f"{shown(path)}: {' '.join(problem.split())}")


def _yaml_problem(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or getattr(exc, "context", None) or str(exc)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    return f"{where}not valid YAML ({problem})"


def _describe(value: Any) -> str:
    return "nothing (empty file)" if value is None else f"a {type(value).__name__}"


def load_templates(folder: Path, shapes: Mapping[str, Shape]) -> dict[str, Any]:
    """The template files `folder/<stem>.yaml` named in `shapes`, keyed by stem, each checked against its shape."""
    out: dict[str, Any] = {}
    for stem, shape in shapes.items():
        path = folder / f"{stem}.yaml"
        try:
            with open(path, encoding="utf-8") as fh:
                value = yaml.safe_load(fh)
        except FileNotFoundError:
            raise template_error(path, "template file not found") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise template_error(path, f"cannot read the template file ({exc})") from None
        except yaml.YAMLError as exc:
            raise template_error(path, _yaml_problem(exc)) from None
        if isinstance(shape, tuple):
            require_keys(path, value, shape)
        elif not isinstance(value, list):
            raise template_error(path, f"expected a list at the top level, found {_describe(value)}")
        out[stem] = value
    logger.debug("Templates - read %d files from %s", len(out), shown(folder))
    return out


def require_keys(path: Path, value: Any, keys: Sequence[str], where: str = "") -> None:
    """Stop with one line naming `path` (and `where` inside it) unless `value` is a mapping holding `keys`."""
    at = f"{where}: " if where else ""
    if not isinstance(value, dict):
        raise template_error(path, f"{at}expected a mapping, found {_describe(value)}")
    missing = [k for k in keys if k not in value]
    if missing:
        raise template_error(path, f"{at}missing key{'s' if len(missing) > 1 else ''} {', '.join(missing)}")


@contextmanager
def reading(path: Path, where: str = "") -> Iterator[None]:
    """Turn a shape error while taking values out of one template file into one line naming that file."""
    at = f"{where}: " if where else ""
    try:
        yield
    except KeyError as exc:
        raise template_error(path, f"{at}missing key {exc.args[0]!r}") from None
    except (IndexError, TypeError, ValueError, AttributeError) as exc:
        raise template_error(path, f"{at}unexpected content ({exc})") from None


def build_entries(path: Path, items: list[Any], build: Callable[[Any], T]) -> list[T]:
    """`build` applied to each entry of a list template file; a malformed entry is named by its position."""
    out: list[T] = []
    for i, item in enumerate(items, start=1):
        with reading(path, f"entry {i}"):
            out.append(build(item))
    return out
