"""Writing event files without losing data: an existing file is kept unless
replacing it is asked for, and a file appears under its name only once it
is complete."""
import os
import os.path as osp
from contextlib import contextmanager
from typing import Iterator


def check_writable(path: str, overwrite: bool) -> None:
    """Raise FileExistsError when ``path`` exists and ``overwrite`` is
    False."""
    if osp.exists(path) and not overwrite:
        raise FileExistsError(
            f'{path} exists; pass overwrite=True to replace it.')


@contextmanager
def written_in_place(path: str, suffix: str = '') -> Iterator[str]:
    """Give a path beside ``path`` to write; move the file to ``path`` when
    the block ends without an error, so a failed write never replaces an
    old file with a partial one.

    Args:
        path (str): The file to write.
        suffix (str): Ending of the temporary name after ``.partial``
            (``np.save`` / ``np.savez`` add their extension otherwise).
    """
    partial_path = f'{path}.partial{suffix}'
    yield partial_path
    os.replace(partial_path, path)
