"""The OHIF Viewer v3 at ``/ohif``, reading the archive through Concilium's own DICOMweb.

The viewer is the prebuilt application of the npm package ``@ohif/app`` (its ``dist``),
installed at set-up by ``tools/install-ohif`` (``make ohif``) and never fetched at run time.
It is built to live at the root of a web server; three things move it under ``/ohif``:

- ``index.html``: ``window.PUBLIC_URL`` and the root-relative ``href``/``src``/``content``
  attributes are rewritten to ``/ohif/``;
- every webpack runtime (the application and its workers) hard-codes its public path as
  ``__webpack_require__.p = "/"``, from which chunks, workers and WebAssembly load: the
  served scripts say ``"/ohif/"`` instead;
- ``app-config.js`` is generated here rather than shipped: ``routerBasename`` ``/ohif`` and
  a single DICOMweb data source, this server's ``/dicomweb``, same origin, no other URL.

Every file is served to signed-in users only, and the DICOMweb requests the viewer makes
carry the same session cookie, so the platform's authorisation applies to every study the
viewer lists or opens (PS3.18 through ``concilium.imaging.dicomweb``).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import mimetypes
import re
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response

from concilium.imaging.actions import ImagingAction
from concilium.platform.errors import ConciliumError, NotFound
from concilium.platform.i18n import _
from concilium.web.context import Ctx, gate, runtime_of

router = APIRouter(include_in_schema=False)

MOUNT = "/ohif"
"""Where the viewer is served; its client-side routes (``/ohif/viewer``) live under it."""
DICOMWEB_ROOT = "/dicomweb"
"""The data source: this server's DICOMweb, same origin, so the session cookie goes along."""
INSTALL_HINT = "run `make ohif` (or tools/install-ohif) on the server, then reload"

_READ = Annotated[Ctx, gate(ImagingAction.STUDY_READ)]
# What moves each kind of asset from the root to the mount point.
_MOVES = {
    ".js": (b'__webpack_require__.p = "/";', f'__webpack_require__.p = "{MOUNT}/";'.encode()),
    ".css": (b"url(/", f"url({MOUNT}/".encode()),
}
_MEDIA_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
_ROOT_ATTRIBUTE = re.compile(r'\b(href|src|content)="/(?!/)')
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


class ViewerNotInstalled(ConciliumError):
    status = 503
    title = "Viewer not installed"


def viewer_dir(request: Request) -> Path:
    """The installed ``dist`` of ``@ohif/app``; refused with how to install it if absent."""
    directory = runtime_of(request).settings.ohif_dir
    if not (directory / "index.html").is_file():
        raise ViewerNotInstalled(f"the OHIF viewer is not installed in {directory}; {INSTALL_HINT}")
    return directory


def app_config() -> dict[str, Any]:
    """The viewer's configuration (OHIF ``window.config``): Concilium's DICOMweb only."""
    return {
        "routerBasename": MOUNT,
        "extensions": [],
        "modes": [],
        "customizationService": {},
        "showStudyList": True,
        "maxNumberOfWebWorkers": 3,
        "showWarningMessageForCrossOrigin": False,
        "showCPUFallbackMessage": True,
        "showLoadingIndicator": True,
        "strictZSpacingForVolumeViewport": True,
        "investigationalUseDialog": {"option": "never"},
        "defaultDataSourceName": "concilium",
        "dataSources": [
            {
                "namespace": "@ohif/extension-default.dataSourcesModule.dicomweb",
                "sourceName": "concilium",
                "configuration": {
                    "friendlyName": "Concilium",
                    "name": "concilium",
                    "qidoRoot": DICOMWEB_ROOT,
                    "wadoRoot": DICOMWEB_ROOT,
                    "wadoUriRoot": "/wado",
                    "qidoSupportsIncludeField": True,
                    "supportsFuzzyMatching": True,
                    "supportsWildcard": True,
                    "imageRendering": "wadors",
                    "thumbnailRendering": "wadors",
                    "enableStudyLazyLoad": True,
                    "staticWado": False,
                    "singlepart": "bulkdata,video",
                    "bulkDataURI": {"enabled": True, "relativeResolution": "studies"},
                },
            }
        ],
    }


def mounted_index(html: str) -> str:
    """``index.html`` moved from ``/`` to ``/ohif/``."""
    html = html.replace('window.PUBLIC_URL="/"', f'window.PUBLIC_URL="{MOUNT}/"')
    return _ROOT_ATTRIBUTE.sub(rf'\1="{MOUNT}/', html)


def content_security_policy(html: str = "") -> str:
    """The policy of every viewer response (workers take theirs from their script's response),
    in place of the application's stricter default.

    Relaxed from the default exactly where the viewer needs it:
    - ``script-src``: the inline scripts of ``index.html`` (by hash, nothing else inline)
      and ``'wasm-unsafe-eval'`` for the image codecs compiled from WebAssembly;
    - ``worker-src ... blob:``: image decoding workers may be started from blob URLs;
    - ``style-src 'unsafe-inline'``: the interface injects its component styles at run time;
    - ``img-src``/``connect-src``/``font-src`` also allow ``data:`` and ``blob:``, which
      thumbnails, fonts and decoded images use.
    Framing stays forbidden and every request stays on this origin.
    """
    hashes = "".join(
        " 'sha256-" + base64.b64encode(hashlib.sha256(s.encode()).digest()).decode() + "'"
        for s in _INLINE_SCRIPT.findall(html)
    )
    return (
        "default-src 'self'; "
        f"script-src 'self' 'wasm-unsafe-eval'{hashes}; "
        "worker-src 'self' blob:; "
        "style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data: blob:; "
        "font-src 'self' data:; "
        "connect-src 'self' data: blob:; "
        "object-src 'none'; base-uri 'self'; frame-ancestors 'none'; form-action 'self'"
    )


_FILE_HEADERS = {"content-security-policy": content_security_policy()}


@functools.lru_cache(maxsize=64)
def _mounted_asset(path: Path, mtime_ns: int, size: int) -> bytes | None:
    """A webpack runtime with its public path, or a style sheet with its root ``url(/...)``,
    moved to ``/ohif/``; None for a file that names no root path.

    Keyed on modification time and size, so a reinstalled viewer is read afresh.
    """
    del mtime_ns, size
    at_root, mounted = _MOVES[path.suffix]
    data = path.read_bytes()
    if at_root not in data:
        return None
    return data.replace(at_root, mounted)


def _index(directory: Path) -> Response:
    html = mounted_index((directory / "index.html").read_text(encoding="utf-8"))
    return Response(
        html,
        media_type="text/html; charset=utf-8",
        headers={"content-security-policy": content_security_policy(html)},
    )


def _file(directory: Path, relative: str) -> Response | None:
    """The file at ``relative`` inside the viewer, or None if there is none."""
    if relative.startswith(".") or "/." in relative:
        return None  # the install stamp and other hidden files are not part of the viewer
    root = directory.resolve()
    path = (root / relative).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        return None
    if path.suffix in _MOVES:
        stat = path.stat()
        mounted = _mounted_asset(path, stat.st_mtime_ns, stat.st_size)
        if mounted is not None:
            return Response(mounted, media_type=_MEDIA_TYPES[path.suffix], headers=_FILE_HEADERS)
    media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    if path.suffix == ".wasm":
        media_type = "application/wasm"  # streaming compilation needs the exact type
    return FileResponse(path, media_type=media_type, headers=_FILE_HEADERS)


@router.get(MOUNT)
def viewer(request: Request, ctx: _READ) -> Response:
    """The viewer's study list (its own routes take over in the browser)."""
    return _index(viewer_dir(request))


@router.get(MOUNT + "/{path:path}")
def viewer_file(request: Request, path: str, ctx: _READ) -> Response:
    """A file of the viewer; any other path is one of its client routes (``/ohif/viewer``)."""
    directory = viewer_dir(request)
    if path == "app-config.js":
        body = "window.config = " + json.dumps(app_config(), indent=2) + ";\n"
        return Response(body, media_type=_MEDIA_TYPES[".js"], headers=_FILE_HEADERS)
    served = _file(directory, path)
    if served is not None:
        return served
    if "." in path.rsplit("/", 1)[-1]:
        # A missing asset is a 404, not the application page in its place.
        raise NotFound(_("the viewer has no file %(path)s") % {"path": path})
    return _index(directory)
