"""Where a provider that renders on this machine writes its results (the local renderer, the
test double): the folder set in its config, else a temporary folder of its own."""

from __future__ import annotations

import shutil
import tempfile
import weakref
from pathlib import Path


class OutputDir:
    """The configured folder (the user's: never removed), else a temporary folder made on
    first use. The client copies results out when it downloads them, so a temporary folder
    goes with its provider: removed by ``remove`` (from the provider's ``aclose``), or at
    the latest when this object goes (with the provider, or the process), rather than piling
    up in the temp dir."""

    def __init__(self, configured: Path | None, prefix: str) -> None:
        self._path = configured
        self._prefix = prefix
        self._own: weakref.finalize | None = None  # set when we made a temp folder

    @property
    def path(self) -> Path:
        if self._path is None:
            self._path = Path(tempfile.mkdtemp(prefix=self._prefix))
            self._own = weakref.finalize(self, shutil.rmtree, self._path, ignore_errors=True)
        self._path.mkdir(parents=True, exist_ok=True)
        return self._path

    async def remove(self) -> None:
        """Remove the temporary folder, if one was made (a later ``path`` makes a new one)."""
        if self._own is not None:
            import asyncio  # here, not at the top: start-up loads no event loop (test_lazy_imports)

            finalizer, self._own, self._path = self._own, None, None
            await asyncio.to_thread(finalizer)  # runs the rmtree once; the fallback is spent
