"""Importing the modules that ``"module:name"`` strings name, and refusing to for files.

cogrl resolves code by name in three places: an environment id ``"mymod:MyEnv-v0"`` (the
module registers the id, as with ``gym.make``), a policy core ``"mycores:leaky"`` (the module
registers the core) and a batched environment core ``"mymod:MyCore"``. Typed by the user (on
the command line, in a script), such a name is the user's choice and is imported.

Written in a file that cogrl loads (a run folder's ``config.json``, ``checkpoint.pt``,
``model.pt``, a sweep's settings), the same name is someone else's choice: importing the
module runs its code, so opening a shared run folder would run whatever its author named
(``"evilmod:Foo-v0"``; ``"this:Foo-v0"`` shows that any installed module will do). While a
file's names are resolved (inside :func:`names_from`), a module that the process has not
imported yet, and that is not part of cogrl itself (whose tasks name their cores as
``"cogrl.envs...:Class"``), is refused with :class:`UntrustedCodeError`, unless the user
trusts the file
for that load (``trust_code=True`` in Python, ``--trust-code`` on the command line: the
convention of Hugging Face's ``trust_remote_code``). A module the user's own script has
imported (and so registered its environment or core) is used as it is.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
from collections.abc import Iterator
from contextvars import ContextVar

__all__ = ["UntrustedCodeError", "import_named_module", "names_from"]

# The file whose names are being resolved, while they are; None where the names are the user's.
_SOURCE: ContextVar[str | None] = ContextVar("cogrl_untrusted_source", default=None)


class UntrustedCodeError(ValueError):
    """A file being loaded names a module that is not imported, and the load does not trust
    the file's code."""


@contextlib.contextmanager
def names_from(source: str | os.PathLike, trust_code: bool = False) -> Iterator[None]:
    """Resolve the ``module:name`` strings read from ``source`` inside this block: unless
    ``trust_code``, :func:`import_named_module` imports no module that is not imported yet."""
    if not isinstance(trust_code, bool):
        raise ValueError(f"trust_code must be True or False, got {trust_code!r}")
    token = _SOURCE.set(None if trust_code else os.fspath(source))
    try:
        yield
    finally:
        _SOURCE.reset(token)


def import_named_module(module: str, named_by: str) -> None:
    """Import ``module``, which ``named_by`` (e.g. ``"the environment id 'mymod:Env-v0'"``)
    names. Inside :func:`names_from` of a file not trusted, a module not imported yet is an
    :class:`UntrustedCodeError` naming the module, the file and how to allow it; an
    ImportError propagates as ``importlib`` raises it."""
    source = _SOURCE.get()
    ours = module == "cogrl" or module.startswith("cogrl.")  # cogrl's own (lazily imported) code
    if source is not None and not ours and module not in sys.modules:
        raise UntrustedCodeError(
            f"{source} names module {module!r} ({named_by}); cogrl does not import a module "
            "that a file it loads names, because importing it runs that module's code. If "
            "you trust the file's author, allow it for this load: --trust-code on the "
            "command line, trust_code=True in Python; or import the module yourself first "
            f"(`import {module}` in your script)"
        )
    importlib.import_module(module)
