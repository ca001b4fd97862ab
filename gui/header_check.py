"""Which images of a folder cannot be read, from their headers (no Qt; run off the GUI thread)."""
from __future__ import annotations


def unreadable_images(paths: list[str]) -> dict[str, str]:
    """image → the message a run would give when loading it (:func:`engine.io.images.check_image`
    gives the same messages as :func:`engine.io.images.load_image`), for the images that
    cannot be read; readable images are left out. Reads headers only: fast on large folders."""
    from engine.io.images import ImageLoadError, check_image

    out: dict[str, str] = {}
    for path in paths:
        try:
            check_image(path)
        except ImageLoadError as exc:
            out[path] = str(exc)
    return out
