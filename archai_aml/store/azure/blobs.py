"""The blob side of the Azure store: one blob container, a folder per entity, progress bars on folders."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from azure.core.exceptions import (
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
    ServiceRequestError,
)
from azure.storage.blob import ContentSettings

from archai_aml.errors import BlobExistsError, StoreError
from archai_aml.store.azure.base import AzureBase
from archai_aml.store.base import BlobInfo
from archai_aml.store.parallel import run_parallel
from archai_aml.store.progress import TransferProgress
from archai_aml.store.rules import (
    blob_conflicts,
    check_blob_name,
    check_key,
    conflict_error,
    matching,
    requested_blobs,
    safe_blob_path,
    upload_plan,
)

T = TypeVar("T")


class AzureBlobSide(AzureBase):
    """Blobs under ``<partition>/<name>/`` of one container (see :class:`~archai_aml.store.base.Store`)."""

    @staticmethod
    def _prefix(partition: str, name: str | None) -> str:
        check_key(partition, name)
        return f"{partition}/" if name is None else f"{partition}/{name}/"

    def _check_tree(self, prefix: str, relatives: Sequence[str]) -> None:
        """:class:`BlobConflictError` when a new blob and a stored (or another new) one would be a file and a
        folder of the same name: one listing of the entity's blobs. (Two writers racing with ``a`` and
        ``a/b`` can still both succeed on Azure; the embedded store's file system refuses the second.)"""
        conflicts = blob_conflicts(relatives, self._list(prefix, None))
        if conflicts:
            raise conflict_error(prefix.rstrip("/"), conflicts)

    def _first_under(self, start: str) -> str | None:
        """The first blob name (in the service's lexical order) that starts with ``start``: one request."""
        try:
            for page in self._container.list_blobs(name_starts_with=start, results_per_page=1).by_page():
                for blob in page:
                    return str(blob.name)
                return None
        except (HttpResponseError, ServiceRequestError) as exc:
            raise self._fail(f"listing blobs under {start}", exc) from exc
        return None

    def _check_one(self, prefix: str, relative: str) -> None:
        """:meth:`_check_tree` for one new blob without listing the entity: one request per folder level
        (a blob named like a folder of ``relative`` sorts first among the names it starts) and one for the
        blobs below ``relative``, so that uploading the n-th blob of an entity costs the same as the first."""
        parts = relative.split("/")
        for depth in range(1, len(parts)):
            folder = "/".join(parts[:depth])
            if self._first_under(prefix + folder) == prefix + folder:
                raise conflict_error(prefix.rstrip("/"), [(relative, folder)])
        below = self._first_under(prefix + relative + "/")
        if below is not None:
            raise conflict_error(prefix.rstrip("/"), [(relative, below[len(prefix) :])])

    def upload_bytes(
        self, partition: str, name: str, blob_name: str, data: bytes, *, overwrite: bool = True
    ) -> str:
        prefix = self._prefix(partition, name)
        full = prefix + check_blob_name(blob_name)
        self._ensure_container()
        self._check_one(prefix, blob_name)
        self._put(full, data, overwrite)
        return full

    def _checked_writer(
        self, partition: str, name: str, blob_names: Sequence[str], *, overwrite: bool
    ) -> Callable[[str, bytes], str]:
        # one listing checks every name; then one request per blob (upload_bytes would check each again)
        prefix = self._prefix(partition, name)
        self._ensure_container()
        self._check_tree(prefix, blob_names)

        def write(blob: str, data: bytes) -> str:
            self._put(prefix + blob, data, overwrite)
            return prefix + blob

        return write

    def _put(self, full: str, data: bytes, overwrite: bool) -> None:
        try:
            # Content-MD5 given on every upload (the service computes it itself only for single-shot
            # uploads), so that the listing can tell a replaced blob (list_blob_info)
            md5 = hashlib.md5(data, usedforsecurity=False).digest()
            settings = ContentSettings(content_md5=bytearray(md5))
            self._container.upload_blob(full, data, overwrite=overwrite, content_settings=settings)
        except ResourceExistsError:
            raise BlobExistsError(f"blob {full} already exists (pass overwrite=True to replace it)") from None
        except (HttpResponseError, ServiceRequestError) as exc:
            raise self._fail(f"uploading blob {full}", exc) from exc

    def upload(
        self,
        partition: str,
        name: str,
        local_path: str | Path,
        *,
        blob_name: str | None = None,
        overwrite: bool = True,
        max_concurrency: int | None = None,
        progress: bool | None = None,
    ) -> list[str]:
        prefix = self._prefix(partition, name)
        jobs = upload_plan(local_path, blob_name)
        self._ensure_container()
        self._check_tree(prefix, [relative for _, relative in jobs])
        total = sum(path.stat().st_size for path, _ in jobs)
        show = self.progress if progress is None else progress

        with TransferProgress(f"upload {prefix}", total, len(jobs), show) as bar:

            def send(job: tuple[Path, str]) -> str:
                path, relative = job
                full = prefix + relative
                with open(path, "rb") as handle:
                    try:
                        self._container.upload_blob(
                            full, handle, overwrite=overwrite, progress_hook=bar.hook()
                        )
                    except ResourceExistsError:
                        raise BlobExistsError(
                            f"blob {full} already exists (pass overwrite=True to replace it)"
                        ) from None
                    except (HttpResponseError, ServiceRequestError) as exc:
                        raise self._fail(f"uploading {path} to blob {full}", exc) from exc
                bar.file_done()
                return full

            return self._run_all(send, jobs, max_concurrency)

    def _run_all(self, fn: Callable[[Any], T], jobs: Sequence[Any], max_concurrency: int | None) -> list[T]:
        return run_parallel(fn, jobs, max(1, max_concurrency or self.max_concurrency))

    def download_bytes(self, partition: str, name: str, blob_name: str) -> bytes:
        full = self._prefix(partition, name) + check_blob_name(blob_name)
        self._ensure_container()
        try:
            return self._container.download_blob(full).readall()
        except ResourceNotFoundError:
            raise FileNotFoundError(f"no blob {full} in container {self.container_name}") from None
        except (HttpResponseError, ServiceRequestError) as exc:
            raise self._fail(f"downloading blob {full}", exc) from exc

    def download(
        self,
        partition: str,
        name: str,
        target_folder: str | Path,
        *,
        blob_names: Sequence[str] | None = None,
        pattern: str | None = None,
        max_concurrency: int | None = None,
        progress: bool | None = None,
    ) -> list[Path]:
        prefix = self._prefix(partition, name)
        sizes: dict[str, int] = {}
        if blob_names is not None:
            relatives = requested_blobs(blob_names, pattern)
        else:
            sizes = self._sizes(prefix, pattern)
            relatives = sorted(sizes)
        folder = Path(target_folder)
        # every name is checked before anything is written
        targets = [(relative, safe_blob_path(folder, relative)) for relative in relatives]
        self._ensure_container()
        show = self.progress if progress is None else progress
        total = sum(sizes.values()) if sizes else None

        with TransferProgress(f"download {prefix}", total, len(targets), show) as bar:

            def fetch(job: tuple[str, Path]) -> Path:
                relative, target = job
                full = prefix + relative
                try:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    downloader = self._container.download_blob(full, progress_hook=bar.hook())
                    with open(target, "wb") as handle:
                        downloader.readinto(handle)
                except ResourceNotFoundError:
                    target.unlink(missing_ok=True)
                    raise FileNotFoundError(f"no blob {full} in container {self.container_name}") from None
                except (HttpResponseError, ServiceRequestError) as exc:
                    raise self._fail(f"downloading blob {full}", exc) from exc
                except OSError as exc:
                    raise StoreError(
                        f"downloading blob {full} to {target} failed: {exc.strerror or exc}"
                    ) from None
                bar.file_done()
                return target

            return self._run_all(fetch, targets, max_concurrency)

    def _infos(self, prefix: str, pattern: str | None) -> dict[str, BlobInfo]:
        """{relative name: size and MD5} of the blobs under ``prefix`` whose name matches ``pattern``: the
        listing's own ``Content-Length`` and ``Content-MD5`` (one request per 5,000 blobs)."""
        self._ensure_container()
        try:
            found = {}
            for b in self._container.list_blobs(name_starts_with=prefix):
                md5 = b.content_settings.content_md5 if b.content_settings is not None else None
                found[b.name[len(prefix) :]] = BlobInfo(int(b.size or 0), bytes(md5).hex() if md5 else None)
        except (HttpResponseError, ServiceRequestError) as exc:
            raise self._fail(f"listing blobs under {prefix}", exc) from exc
        return {n: found[n] for n in matching(found, pattern)}

    def _sizes(self, prefix: str, pattern: str | None) -> dict[str, int]:
        """{relative name: size} of the blobs under ``prefix`` whose name matches ``pattern``."""
        return {n: info.size for n, info in self._infos(prefix, pattern).items()}

    def list_blob_info(
        self, partition: str, name: str | None = None, *, pattern: str | None = None
    ) -> dict[str, BlobInfo]:
        return dict(sorted(self._infos(self._prefix(partition, name), pattern).items()))

    def _list(self, prefix: str, pattern: str | None) -> list[str]:
        return sorted(self._sizes(prefix, pattern))

    def list_blobs(self, partition: str, name: str | None = None, *, pattern: str | None = None) -> list[str]:
        return self._list(self._prefix(partition, name), pattern)

    def delete_blobs(self, partition: str, name: str, *, pattern: str | None = None) -> int:
        prefix = self._prefix(partition, name)
        relatives = self._list(prefix, pattern)

        def remove(relative: str) -> int:
            try:
                self._container.delete_blob(prefix + relative)
                return 1
            except ResourceNotFoundError:
                return 0  # deleted concurrently
            except (HttpResponseError, ServiceRequestError) as exc:
                raise self._fail(f"deleting blob {prefix + relative}", exc) from exc

        return sum(self._run_all(remove, relatives, None))
