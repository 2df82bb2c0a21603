"""``vaekit explore``'s web server: the explorer page and its JSON API, on loopback only.

The standard library's ``ThreadingHTTPServer`` serves four fixed routes and nothing else:

    GET  /                 the page (explorer.html, read from the package once, at start)
    GET  /api/state        Explorer.state
    POST /api/decode       Explorer.decode
    POST /api/interpolate  Explorer.interpolate

It listens on 127.0.0.1 only. A request must name this server as its Host (127.0.0.1:PORT or
localhost:PORT; so a page whose own name resolves to 127.0.0.1, DNS rebinding, gets 403) and,
when it has an Origin, come from the page itself (403). A path is only ever compared with the
four routes: nothing in a request names a file, and no request touches the filesystem. A POST
needs a JSON body (415 otherwise) of a declared length (411) of at most ``MAX_BODY`` bytes
(413, answered before the body is read); a body that is no JSON or not what the explorer takes
gets 400 with a sentence, as JSON; other paths 404, other methods 405. One request is decoded at
a time, and a connection that stalls is dropped after ``TIMEOUT`` seconds.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
import webbrowser
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.resources import files

from ..estimators import LatentEstimator
from ..exceptions import ConfigError
from .conditions import condition_columns
from .explorer import BadRequest, Explorer, check_explorable
from .run import Run

HOST = "127.0.0.1"
#: The largest request body taken, in bytes (a 64-D latent vector needs about 1.5 KiB).
MAX_BODY = 64 * 1024
#: Seconds a connection may stall before it is dropped.
TIMEOUT = 10.0
#: At most this much of a refused body is read and thrown away, so the client reads the 4xx.
_DRAIN = 1 << 20
_ROUTES = {
    "/": "GET",
    "/api/state": "GET",
    "/api/decode": "POST",
    "/api/interpolate": "POST",
}
_PAGE_POLICY = (
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
    "img-src data:; connect-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)


def check_port(port) -> int:
    """``port`` if it is a TCP port number, 0 meaning any free one; ConfigError otherwise.

    Parameters
    ----------
    port : int
        The port asked for.

    Returns
    -------
    int
        The same port.
    """
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ConfigError(
            f"The port must be a whole number from 0 (any free port) to 65535; got {port!r}."
        )
    return port


class ExplorerServer(ThreadingHTTPServer):
    """The explorer's HTTP server on 127.0.0.1, bound (to a free port for port 0) when made.

    Parameters
    ----------
    explorer : Explorer
        What the page shows and how it answers.
    port : int
        The port to listen on; 0 for any free one.
    """

    daemon_threads = True

    def __init__(self, explorer: Explorer, port: int = 0) -> None:
        try:
            super().__init__((HOST, check_port(port)), _Handler)
        except OSError as err:
            raise ConfigError(
                f"Cannot listen on {HOST}:{port} ({err.strerror}); choose another --port, or "
                "leave it out for a free one."
            ) from None
        self.explorer = explorer
        self.page = files(__package__).joinpath("explorer.html").read_bytes()
        self.port = self.server_address[1]
        self.hosts = {f"{HOST}:{self.port}", f"localhost:{self.port}"}
        self.lock = threading.Lock()  # one decode at a time
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The page's address, ``http://127.0.0.1:PORT/``."""
        return f"http://{HOST}:{self.port}/"

    def start(self) -> ExplorerServer:
        """Serve in a background thread (``stop`` ends it); returns the server."""
        self._thread = threading.Thread(target=self.serve_forever, name="explorer", daemon=True)
        self._thread.start()
        return self

    def handle_error(self, request, client_address) -> None:
        """A client that went away or stalled is no news; anything else is shown as usual."""
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._thread is not None:
            self.shutdown()
            self._thread.join()
            self._thread = None
        self.server_close()


class _Handler(BaseHTTPRequestHandler):
    """The four routes; any other request gets its 4xx as JSON, and the server goes on."""

    server: ExplorerServer
    timeout = TIMEOUT
    server_version = "vaekit-explorer"
    sys_version = ""
    default_request_version = "HTTP/1.0"  # a status line even for a request line without one
    body_read = False

    def do_GET(self) -> None:
        route = self._route("GET")
        if route == "/":
            self._send(HTTPStatus.OK, self.server.page, "text/html; charset=utf-8")
        elif route == "/api/state":
            self._send_json(HTTPStatus.OK, self.server.explorer.state)

    def do_POST(self) -> None:
        route = self._route("POST")
        if route is None:
            return
        body = self._json_body()
        if body is None:
            return
        explorer = self.server.explorer
        answer = explorer.decode if route == "/api/decode" else explorer.interpolate
        try:
            with self.server.lock:
                result = answer(body)
        except BadRequest as err:
            self._send_json(HTTPStatus.BAD_REQUEST, {"error": str(err)})
            return
        self._send_json(HTTPStatus.OK, result)

    def __getattr__(self, name: str):
        """Every other method (``do_PUT``, ``do_BREW``, ...): 405, not http.server's 501."""
        if name.startswith("do_"):
            return self._not_allowed
        raise AttributeError(name)

    def _not_allowed(self) -> None:
        self._route(self.command)  # no route takes this method: 405 (or 403, 404)

    # ---- checks ---------------------------------------------------------------------------
    def _route(self, method: str) -> str | None:
        """The route asked for, when the request may have it; else the refusal sent, None."""
        if self.headers.get("Host") not in self.server.hosts:
            return self._refuse(HTTPStatus.FORBIDDEN, f"Ask for {self.server.url} by its name.")
        origin = self.headers.get("Origin")
        if origin is not None and origin.removeprefix("http://") not in self.server.hosts:
            return self._refuse(HTTPStatus.FORBIDDEN, "Requests come from the explorer's page.")
        path = self.path.split("?", 1)[0]
        if path not in _ROUTES:
            return self._refuse(HTTPStatus.NOT_FOUND, "There is no such page.")
        if _ROUTES[path] != method:
            return self._refuse(
                HTTPStatus.METHOD_NOT_ALLOWED, f"{path} takes {_ROUTES[path]} only.", path
            )
        return path

    def _json_body(self):
        """The POST body, parsed, when it is JSON of an acceptable size; else the refusal sent
        and None. A body over ``MAX_BODY`` is refused by its declared length, unread."""
        kind = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if kind != "application/json":
            return self._refuse(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "Send the body as JSON.")
        if "Content-Length" not in self.headers or "Transfer-Encoding" in self.headers:
            return self._refuse(HTTPStatus.LENGTH_REQUIRED, "Give the body's Content-Length.")
        length = self._length()
        if length is None:
            return self._refuse(HTTPStatus.BAD_REQUEST, "Content-Length must be a number.")
        if length > MAX_BODY:
            too_large = HTTPStatus.REQUEST_ENTITY_TOO_LARGE
            return self._refuse(too_large, f"A body may have {MAX_BODY} bytes at most.")
        data = self.rfile.read(length)
        self.body_read = True
        try:
            if len(data) < length:
                raise ValueError("short body")
            return json.loads(data.decode("utf-8"), parse_constant=_no_constant)
        except (ValueError, RecursionError):  # JSONDecodeError and UnicodeDecodeError too
            return self._refuse(HTTPStatus.BAD_REQUEST, "The body is not valid JSON.")

    def _drain(self) -> None:
        """After a refusal of a request whose body is unread: stop sending, then read (and
        drop) at most ``_DRAIN`` bytes of it, so the client reads the answer, not a reset."""
        length = self._length()
        if self.body_read or not length:
            return
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_WR)
            self.connection.settimeout(1.0)
            left = min(length, _DRAIN)
            while left > 0 and (chunk := self.connection.recv(min(left, 65536))):
                left -= len(chunk)
        except OSError:
            pass

    def _length(self) -> int | None:
        """The declared Content-Length: None when absent or not a number of ASCII digits."""
        text = self.headers.get("Content-Length", "")
        return int(text) if text.isascii() and text.isdigit() else None

    # ---- answers ----------------------------------------------------------------------------
    def _refuse(self, status: HTTPStatus, message: str, path: str | None = None) -> None:
        headers = {"Allow": _ROUTES[path]} if path is not None else {}
        self._send_json(status, {"error": message}, headers)
        self._drain()

    def send_error(self, code: int, message: str | None = None, explain: str | None = None):
        """http.server's own refusals (a malformed request line or headers) as JSON too."""
        self.close_connection = True
        self._send_json(HTTPStatus(code), {"error": message or HTTPStatus(code).phrase})

    def _send_json(self, status: HTTPStatus, value, headers: dict | None = None) -> None:
        body = json.dumps(value, allow_nan=False, separators=(",", ":")).encode()
        self._send(status, body, "application/json", headers)

    def _send(self, status: HTTPStatus, body: bytes, kind: str, headers=None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        if kind.startswith("text/html"):
            self.send_header("Content-Security-Policy", _PAGE_POLICY)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format: str, *args) -> None:
        """Quiet: the page's requests are not news on the terminal."""


def _no_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def explore(
    model: Run | LatentEstimator,
    X=None,
    y=None,
    *,
    conditions=None,
    image_shape: tuple[int, int, int] | None = None,
    feature_names: list[str] | None = None,
    condition_names: list[str] | None = None,
    port: int = 0,
    open_browser: bool = True,
    block: bool = True,
) -> ExplorerServer:
    """Explore a model's latent space in a web page on 127.0.0.1 (``vaekit explore``).

    The page maps the codes of the rows X (for more than two latent dimensions, on their two
    leading principal directions), coloured by y, and decodes any point of it, slider values
    of each latent unit, a straight line between two points, and a conditional model's
    condition.

    Parameters
    ----------
    model : Run or LatentEstimator
        A run (its held-out rows, labels, conditions, image shape and feature names are the
        defaults) or a fitted VAE or Autoencoder (then give X).
    X : array-like of shape (n, n_features), optional
        The rows to map; a run's held-out rows by default.
    y : array-like of shape (n,), optional
        Their labels, which colour the map.
    conditions : array-like, optional
        Their conditions, for a conditional model.
    image_shape : tuple of int, optional
        (channels, height, width) of image rows; a table's rows show as bars.
    feature_names : list of str, optional
        A table's column names.
    condition_names : list of str, optional
        The covariates' names, for a model conditioned on covariates.
    port : int
        The port on 127.0.0.1; 0 (the default) takes a free one.
    open_browser : bool
        Open the page in the default web browser.
    block : bool
        Serve until interrupted (Ctrl-C), printing the address first; with False, serve in a
        background thread and return at once (``stop()`` ends it).

    Returns
    -------
    ExplorerServer
        The server, its ``url``; stopped when ``block`` is True.
    """
    check_port(port)
    run = model if isinstance(model, Run) else None
    estimator = check_explorable(model.estimator if run is not None else model)
    if run is not None and X is None:
        X, y, conditions = run.load_data()
    if X is None:
        raise TypeError("explore(estimator, X): give the rows to map.")
    if run is not None:
        image_shape = image_shape or run.image_shape
        feature_names = feature_names or run.feature_names
        condition_names = condition_names or condition_columns(run.condition) or None
    explorer = Explorer(
        estimator,
        X,
        y,
        conditions,
        image_shape=image_shape,
        feature_names=feature_names,
        condition_names=condition_names,
        title=_title(estimator, run),
    )
    server = ExplorerServer(explorer, port)
    if not block:
        server.start()
        if open_browser:
            webbrowser.open(server.url)
        return server
    print(f"explorer: {server.url} (Ctrl-C to stop)", flush=True)
    if open_browser:
        webbrowser.open(server.url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("explorer stopped")
    finally:
        server.server_close()
    return server


def _title(estimator: LatentEstimator, run: Run | None) -> str:
    latent = f"{estimator.n_components}-D latent"
    if run is None:
        return f"{type(estimator).__name__}, {latent}"
    return f"{run.info['model']} on {run.info['data']['name']}, {latent}"
