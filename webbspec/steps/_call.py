"""Calling a step from Python on a file as well as on a model (the official ``Step.call`` habit).

``@accepts_files`` lets ``webbspec.steps.<alias>.run("x_rate.fits")`` read the file itself and,
when no ``refs`` are given, pick the references the way the workflow does: from the store
``refs/`` beside the file or in a directory above it (newest context), if there is one; otherwise every reference is "N/A"
and the step skips what needs one, as the official steps do with ``override_<reftype>="N/A"``.
"""

import functools
import os


def _store_refs(path, header, module):
    from ..io.refs import bestrefs

    types = tuple(getattr(module, "REFTYPES", ()))
    if not types:
        return {}
    here = os.path.dirname(os.path.abspath(path))
    for _ in range(5):      # a program's products sit up to four levels below its store
        store = os.path.join(here, "refs")
        if os.path.isdir(store):
            break
        here = os.path.dirname(here)
    else:
        return {}
    return bestrefs(header, types, store, None)


def accepts_files(run):
    """Decorator for a step's ``run(model, refs, **params)``: ``model`` may be a path."""

    @functools.wraps(run)
    def wrapper(model, refs=None, *args, **kwargs):
        if isinstance(model, (str, os.PathLike)):
            from ..io import datamodels
            import sys

            path = os.fspath(model)
            model = datamodels.read(path)
            if refs is None:
                refs = _store_refs(path, model.primary, sys.modules[run.__module__])
        return run(model, refs, *args, **kwargs)

    return wrapper
