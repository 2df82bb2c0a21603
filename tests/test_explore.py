"""vaekit explore: the JSON API over loopback, its refusals, the page in headless Chromium, and
the command from start to Ctrl-C. (The README's screenshot is of the pretrained MNIST model:
tests/test_zoo.py takes it.)
"""

from __future__ import annotations

import base64
import http.client
import io
import json
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import torch
from browser import headless_page
from ctrl_c import restore_ctrl_c
from PIL import Image
from sklearn.datasets import load_digits, load_wine

import vaekit
from vaekit.exceptions import ConfigError
from vaekit.runs import explore, train_run
from vaekit.runs.explorer import MAX_STEPS, check_explorable
from vaekit.runs.explorer_server import MAX_BODY, ExplorerServer, check_port

VAEKIT = Path(sys.executable).parent / "vaekit"
QUICK = {"learning_rate": 1e-2, "likelihood": "continuous_bernoulli", "random_state": 0}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny fits and decodes run faster on one thread on a shared machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return (X / 16).astype(np.float32), y


@contextmanager
def serving(estimator, X, y=None, **options):
    server = explore(estimator, X, y, open_browser=False, block=False, **options)
    try:
        yield server
    finally:
        server.stop()


def fitted(X, y=None, **params):
    return vaekit.VAE(verbose=False, **(QUICK | params)).fit(X, y)


@pytest.fixture(scope="module")
def mlp2(digits):
    """A 2-D MLP VAE on digits, explored on its 297 held-out rows."""
    X, y = digits
    vae = fitted(X[:1500], n_components=2, max_epochs=3, hidden_sizes=(64,))
    with serving(vae, X[1500:], y[1500:], image_shape=(1, 8, 8)) as server:
        yield vae, X[1500:], server


@pytest.fixture(scope="module")
def conv8(digits):
    """An 8-D convolutional VAE on digits."""
    X, y = digits
    vae = fitted(X[:1500], n_components=8, max_epochs=3, architecture="conv", image_shape=(1, 8, 8))
    with serving(vae, X[1500:], y[1500:], image_shape=(1, 8, 8)) as server:
        yield vae, X[1500:], server


@pytest.fixture(scope="module")
def labelled(digits):
    """A VAE conditioned on the digit's class."""
    X, y = digits
    vae = fitted(X[:1500], y[:1500], n_components=2, max_epochs=3, condition="label")
    with serving(vae, X[1500:], y[1500:], conditions=y[1500:], image_shape=(1, 8, 8)) as server:
        yield vae, X[1500:], server


@pytest.fixture(scope="module")
def wine():
    data = load_wine()
    return data.data, data.target, list(data.feature_names)


@pytest.fixture(scope="module")
def table(wine):
    """A 3-D VAE of the wine table (13 features, standardised): shown as bars."""
    X, y, names = wine
    vae = fitted(X, n_components=3, max_epochs=20, likelihood="gaussian", standardize=True)
    with serving(vae, X, y, feature_names=names) as server:
        yield vae, X, server


@pytest.fixture(scope="module")
def covariates(wine):
    """A VAE of the wine table conditioned on its first column, alcohol."""
    X, _, names = wine
    vae = fitted(X[:, 1:], X[:, :1], n_components=2, max_epochs=3, likelihood="gaussian",
                 standardize=True, condition="covariates")  # fmt: skip
    options = {"conditions": X[:, :1], "condition_names": ["alcohol"], "feature_names": names[1:]}
    with serving(vae, X[:, 1:], **options) as server:
        yield server


# ---- the JSON API ---------------------------------------------------------------------------


def get(server, path="/api/state"):
    with urllib.request.urlopen(server.url.rstrip("/") + path, timeout=30) as answer:
        return json.load(answer)


def post(server, path, body):
    request = urllib.request.Request(
        server.url.rstrip("/") + path,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.load(answer)


def pixels(uri: str) -> np.ndarray:
    assert uri.startswith("data:image/png;base64,")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))))


def test_the_state_maps_the_held_out_codes(mlp2):
    vae, X, server = mlp2
    state = get(server)
    codes = vae.transform(X)
    assert state["latent_dim"] == 2 and state["n_rows"] == len(X) == len(state["map"]["x"])
    np.testing.assert_allclose(state["map"]["x"], codes[:, 0], atol=1e-4)
    np.testing.assert_allclose(state["map"]["y"], codes[:, 1], atol=1e-4)
    assert state["map"]["directions"] == [[1.0, 0.0], [0.0, 1.0]]
    assert [e["label"] for e in state["map"]["legend"]] == [str(d) for d in range(10)]
    assert len(set(e["color"] for e in state["map"]["legend"])) == 10
    activity = [unit["activity"] for unit in state["units"]]
    assert activity == sorted(activity, reverse=True)
    for unit in state["units"]:
        j = unit["index"]
        assert unit["low"] <= min(codes[:, j].min(), -3) and unit["high"] >= codes[:, j].max()
    assert state["data"] == {"kind": "image", "shape": [1, 8, 8]}
    assert state["condition"] is None and state["limit"] >= 8
    np.testing.assert_allclose(state["start"], codes[0])


def test_a_decode_is_the_decoders_mean_at_that_point(mlp2):
    vae, _, server = mlp2
    shown = [pixels(post(server, "/api/decode", {"z": z})["example"]) for z in ([0, 0], [2, -1.5])]
    for image, z in zip(shown, ([0, 0], [2, -1.5]), strict=True):
        mean = vae.inverse_transform(np.array([z], dtype=float))[0].reshape(8, 8)
        np.testing.assert_array_equal(image, np.round(np.clip(mean, 0, 1) * 255))
    assert not np.array_equal(shown[0], shown[1])


def test_an_interpolation_runs_from_one_end_to_the_other(mlp2):
    _, _, server = mlp2
    ends = {"from": [-1.0, 0.5], "to": [1.5, -2]}
    strip = post(server, "/api/interpolate", ends | {"steps": 7})["examples"]
    assert len(strip) == 7
    assert strip[0] == post(server, "/api/decode", {"z": ends["from"]})["example"]
    assert strip[-1] == post(server, "/api/decode", {"z": ends["to"]})["example"]
    assert len(set(strip)) > 2


def raw(server, method, path, body=None, headers=None, host=True):
    """(status, JSON answer) of one request, headers exactly as given."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        connection.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        if host:
            connection.putheader("Host", f"127.0.0.1:{server.port}")
        for name, value in (headers or {}).items():
            connection.putheader(name, value)
        connection.endheaders(body)
        answer = connection.getresponse()
        return answer.status, answer.getheaders(), answer.read()
    finally:
        connection.close()


JSON = {"Content-Type": "application/json"}


def json_post(body: bytes | str, **headers) -> dict:
    data = body.encode() if isinstance(body, str) else body
    return {"body": data, "headers": JSON | {"Content-Length": str(len(data))} | headers}


REFUSED = {
    "an unknown path": ("GET", "/nope", {}, 404),
    "a path up the tree": ("GET", "/../../etc/passwd", {}, 404),
    "an escaped path up the tree": ("GET", "/%2e%2e/%2e%2e/etc/passwd", {}, 404),
    "the page's file by name": ("GET", "/explorer.html", {}, 404),
    "a path below a route": ("GET", "/api/state/../../run.json", {}, 404),
    "an absolute path": ("GET", "//etc/passwd", {}, 404),
    "a full URL": ("GET", "http://example.com/", {}, 404),
    "POST to the page": ("POST", "/", json_post("{}"), 405),
    "GET of the decoder": ("GET", "/api/decode", {}, 405),
    "PUT": ("PUT", "/api/decode", json_post("{}"), 405),
    "DELETE": ("DELETE", "/", {}, 405),
    "an unknown method": ("BREW", "/", {}, 405),
    "another host's name (DNS rebinding)": (
        "GET", "/api/state", {"headers": {"Host": "attacker.example:80"}, "host": False}, 403),
    "no Host header": ("GET", "/api/state", {"host": False}, 403),
    "another origin": (
        "POST", "/api/decode", json_post('{"z": [0, 0]}', Origin="http://attacker.example"), 403),
    "a form's body": (
        "POST", "/api/decode",
        {"body": b"z=1", "headers": {"Content-Type": "application/x-www-form-urlencoded",
                                     "Content-Length": "3"}},
        415,
    ),
    "no length": ("POST", "/api/decode", {"headers": JSON}, 411),
    "a length that is no number": (
        "POST", "/api/decode", {"headers": JSON | {"Content-Length": "-5"}}, 400),
    "a length of digits that are not ASCII": (
        "POST", "/api/decode", {"headers": JSON | {"Content-Length": "\u00b2"}}, 400),
    "an oversized body": ("POST", "/api/decode", json_post(b"[" + b"0," * MAX_BODY + b"0]"), 413),
    "a huge declared length, unsent": (
        "POST", "/api/decode", {"headers": JSON | {"Content-Length": str(10**12)}}, 413),
    "no JSON": ("POST", "/api/decode", json_post("{z: 1"), 400),
    "bytes that are no UTF-8": ("POST", "/api/decode", json_post(b'{"z": "\xff\xfe"}'), 400),
    "NaN": ("POST", "/api/decode", json_post('{"z": [NaN, 0]}'), 400),
    "Infinity": ("POST", "/api/decode", json_post('{"z": [Infinity, 0]}'), 400),
    "a number too large for a float": ("POST", "/api/decode", json_post('{"z": [1e999, 0]}'), 400),
    "an integer too large for a float": (
        "POST", "/api/decode", json_post('{"z": [' + "9" * 400 + ", 0]}"), 400),
    "deep nesting": ("POST", "/api/decode", json_post("[" * 30000 + "]" * 30000), 400),
    "a list for a body": ("POST", "/api/decode", json_post("[0, 0]"), 400),
    "no z": ("POST", "/api/decode", json_post("{}"), 400),
    "a short z": ("POST", "/api/decode", json_post('{"z": [0]}'), 400),
    "a long z": ("POST", "/api/decode", json_post('{"z": [0, 0, 0]}'), 400),
    "a string in z": ("POST", "/api/decode", json_post('{"z": ["0", 0]}'), 400),
    "a boolean in z": ("POST", "/api/decode", json_post('{"z": [true, 0]}'), 400),
    "z beyond the bound": ("POST", "/api/decode", json_post('{"z": [0, -1000]}'), 400),
    "a field the API does not take": (
        "POST", "/api/decode", json_post('{"z": [0, 0], "path": "/etc/passwd"}'), 400),
    "a condition for an unconditional model": (
        "POST", "/api/decode", json_post('{"z": [0, 0], "condition": 3}'), 400),
    "one step": (
        "POST", "/api/interpolate", json_post('{"from": [0, 0], "to": [1, 1], "steps": 1}'), 400),
    "too many steps": (
        "POST", "/api/interpolate",
        json_post(f'{{"from": [0, 0], "to": [1, 1], "steps": {MAX_STEPS + 1}}}'), 400),
    "steps as text": (
        "POST", "/api/interpolate", json_post('{"from": [0, 0], "to": [1, 1], "steps": "5"}'), 400),
    "an end beyond the bound": (
        "POST", "/api/interpolate", json_post('{"from": [0, 0], "to": [99, 1], "steps": 5}'), 400),
}  # fmt: skip


@pytest.mark.parametrize("what", list(REFUSED))
def test_a_bad_request_gets_its_4xx_and_the_server_goes_on(mlp2, what):
    _, _, server = mlp2
    method, path, options, expected = REFUSED[what]
    headers = options.get("headers", {})
    started = time.monotonic()
    status, answer_headers, body = raw(
        server, method, path, options.get("body"), headers, options.get("host", True)
    )
    assert status == expected, body
    assert time.monotonic() - started < 5  # refused at once: an unsent body is never awaited
    message = json.loads(body)["error"]
    assert message and len(message) < 200 and "Traceback" not in message
    assert "/etc/passwd" not in message and "root:" not in message
    if status == 405:
        assert dict(answer_headers)["Allow"] in ("GET", "POST")
    assert get(server)["latent_dim"] == 2  # and the server still answers


@pytest.mark.parametrize(
    "request_bytes, expected",
    [
        (b"GARBAGE\r\n\r\n", 400),
        (b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\n\r\n", 414),
        (b"GET / HTTP/1.1\r\nHost: x\r\nX-Long: " + b"a" * 70000 + b"\r\n\r\n", 431),
        (b"GET / HTTP/1.1\r\n" + b"X-Many: 1\r\n" * 150 + b"\r\n", 431),
        (b"GET / HTTP/9.9\r\n\r\n", 505),
    ],
    ids=["garbage", "a long request line", "a long header", "too many headers", "HTTP/9.9"],
)
def test_malformed_http_is_refused_and_the_server_goes_on(mlp2, request_bytes, expected):
    _, _, server = mlp2
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as connection:
        connection.sendall(request_bytes)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    status = int(answer.split(b" ", 2)[1])
    assert status == expected and (400 <= status < 500 or status == 505), answer[:200]
    assert get(server)["latent_dim"] == 2


def test_a_body_shorter_than_its_length_is_refused(mlp2):
    _, _, server = mlp2
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as connection:
        connection.sendall(
            f"POST /api/decode HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
            'Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"z": [0,'.encode()
        )
        connection.shutdown(socket.SHUT_WR)
        answer = connection.makefile("rb").read()
    assert answer.startswith(b"HTTP/1.0 400 ") and b"not valid JSON" in answer
    assert get(server)["latent_dim"] == 2


def test_a_one_dimensional_latent_maps_onto_a_line(digits):
    X, y = digits
    vae = fitted(X[:300], n_components=1, max_epochs=1, hidden_sizes=(16,))
    with serving(vae, X[1500:], y[1500:], image_shape=(1, 8, 8)) as server:
        state = get(server)
        assert state["map"]["directions"] == [[1.0], [0.0]] and set(state["map"]["y"]) == {0}
        assert state["map"]["axes"] == ["z1 of the posterior means", ""]
        post(server, "/api/decode", {"z": [1.5]})


def test_the_page_is_served_with_a_strict_policy(mlp2):
    _, _, server = mlp2
    status, headers, body = raw(server, "GET", "/")
    headers = dict(headers)
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert body.startswith(b"<!DOCTYPE html>") and not re.search(rb"https?:|//[a-z]", body)
    policy = headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "connect-src 'self'" in policy
    assert headers["X-Content-Type-Options"] == "nosniff"
    status, _, _ = raw(server, "GET", "/?anything=1")
    assert status == 200  # a query string does not change the route


def test_it_listens_on_loopback_only(mlp2):
    _, _, server = mlp2
    assert server.server_address[0] == "127.0.0.1"
    assert server.url == f"http://127.0.0.1:{server.port}/"


def test_a_conditional_model_decodes_the_class_chosen(labelled):
    vae, _, server = labelled
    state = get(server)
    assert state["condition"]["kind"] == "label"
    assert state["condition"]["classes"] == list(range(10))
    images = {
        c: post(server, "/api/decode", {"z": [0, 0], "condition": c})["example"] for c in (1, 7)
    }
    assert images[1] != images[7]
    mean = vae.inverse_transform(np.zeros((1, 2)), [7])[0].reshape(8, 8)
    np.testing.assert_array_equal(pixels(images[7]), np.round(np.clip(mean, 0, 1) * 255))
    for bad in (None, 10, "7", 7.0, True, [7]):
        body = {"z": [0, 0]} | ({} if bad is None else {"condition": bad})
        with pytest.raises(urllib.error.HTTPError) as refused:
            post(server, "/api/decode", body)
        assert refused.value.code == 400
        assert "condition" in json.loads(refused.value.read())["error"]


def test_a_table_decodes_to_feature_values(table, wine):
    vae, X, server = table
    _, _, names = wine
    state = get(server)
    assert state["data"]["kind"] == "table" and state["data"]["features"] == names
    np.testing.assert_allclose(state["data"]["low"], X.min(axis=0), rtol=1e-4)
    np.testing.assert_allclose(state["data"]["high"], X.max(axis=0), rtol=1e-4)
    assert "PC 1 of the posterior means" in state["map"]["axes"][0]
    z = [0.5, -0.5, 1.0]
    values = post(server, "/api/decode", {"z": z})["example"]
    np.testing.assert_allclose(values, vae.inverse_transform(np.array([z]))[0], rtol=1e-5)


def test_a_model_of_covariates_takes_them_within_their_range(covariates, wine):
    X, _, _ = wine
    shown = get(covariates)["condition"]
    assert shown["kind"] == "covariates" and shown["names"] == ["alcohol"]
    assert shown["low"][0] < X[:, 0].min() and shown["high"][0] > X[:, 0].max()
    a, b = (post(covariates, "/api/decode", {"z": [0, 0], "condition": [v]}) for v in (11.5, 14))
    assert a != b
    for bad in ([1000.0], [13, 1], 13, ["13"]):
        with pytest.raises(urllib.error.HTTPError) as refused:
            post(covariates, "/api/decode", {"z": [0, 0], "condition": bad})
        assert refused.value.code == 400


def test_an_autoencoder_is_explored_by_its_codes(digits):
    X, y = digits
    autoencoder = vaekit.Autoencoder(n_components=3, max_epochs=2, verbose=False).fit(X[:500])
    with serving(autoencoder, X[1500:], y[1500:], image_shape=(1, 8, 8)) as server:
        state = get(server)
        assert state["what"] == "codes" and "PC 1 of the codes" in state["map"]["axes"][0]
        codes = autoencoder.transform(X[1500:])
        assert state["limit"] >= 2 * np.abs(codes).max()
        post(server, "/api/decode", {"z": codes[5].tolist()})


def test_a_semi_supervised_model_is_refused_in_a_sentence():
    with pytest.raises(ConfigError, match="semi_supervised model"):
        check_explorable(vaekit.SemiSupervisedVAE())
    with pytest.raises(TypeError, match="fitted VAE or Autoencoder"):
        check_explorable(object())


@pytest.mark.parametrize("port", [-1, 65536, 8.5, "80", True])
def test_a_port_out_of_range_is_refused(port):
    with pytest.raises(ConfigError, match="from 0 .any free port. to 65535"):
        check_port(port)


def test_a_busy_port_is_refused_in_a_sentence(mlp2):
    _, _, server = mlp2
    with pytest.raises(ConfigError, match=f"Cannot listen on 127.0.0.1:{server.port}"):
        ExplorerServer(server.explorer, server.port)


def test_many_rows_are_mapped_as_a_seeded_subset(mlp2, monkeypatch):
    from vaekit.runs import explorer

    vae, X, _ = mlp2
    monkeypatch.setattr(explorer, "MAP_ROWS", 100)
    shown = explorer.Explorer(vae, X, image_shape=(1, 8, 8)).state
    again = explorer.Explorer(vae, X, image_shape=(1, 8, 8)).state
    assert len(shown["map"]["x"]) == 100 and shown["n_rows"] == len(X)
    assert shown["map"]["x"] == again["map"]["x"]


# ---- the page in headless Chromium ----------------------------------------------------------


@contextmanager
def browsing(url: str):
    """A page of ``url`` in Debian's headless chromium; on leaving, asserts that the console
    had no errors or warnings and that nothing outside the server was asked for."""
    problems, requested = [], []
    with headless_page() as page:
        page.on("console", lambda m: m.type in ("error", "warning") and problems.append(m.text))
        page.on("pageerror", lambda error: problems.append(str(error)))
        page.on("request", lambda request: requested.append(request.url))
        page.goto(url, wait_until="load")
        page.wait_for_function("() => document.body.dataset.ready === '1'")
        wait_for(page, "decodes", 1)
        yield page
    assert not problems, f"the console showed: {problems}"
    outside = [u for u in requested if not u.startswith(url)]
    assert not outside, f"the page asked for {outside}"


def wait_for(page, counter: str, at_least: int) -> None:
    page.wait_for_function(f"() => Number(document.body.dataset.{counter} || 0) >= {at_least}")


def decodes(page) -> int:
    return int(page.evaluate("() => document.body.dataset.decodes"))


def click_map(page, fx: float, fy: float) -> None:
    """Click at a fraction of the map's width and height, and wait for its decode."""
    box = page.locator("#map").bounding_box()
    done = decodes(page)
    page.mouse.click(box["x"] + fx * box["width"], box["y"] + fy * box["height"])
    wait_for(page, "decodes", done + 1)


def drag_slider(page, k: int, fraction: float, panel: str = "#sliders") -> None:
    """Drag the k-th slider's thumb in ``panel`` (from its value) to ``fraction`` of its
    track."""
    slider = page.locator(f"{panel} input[type=range]").nth(k)
    slider.scroll_into_view_if_needed()
    box = slider.bounding_box()
    share = slider.evaluate("s => (s.value - s.min) / (s.max - s.min)")
    y = box["y"] + box["height"] / 2
    done = decodes(page)
    page.mouse.move(box["x"] + 8 + share * (box["width"] - 16), y)
    page.mouse.down()
    page.mouse.move(box["x"] + 8 + fraction * (box["width"] - 16), y, steps=5)
    page.mouse.up()
    wait_for(page, "decodes", done + 1)
    page.wait_for_function("() => !busy")


def pick_two(page, a: tuple, b: tuple) -> list:
    page.click("#pick")
    box = page.locator("#map").bounding_box()
    for fx, fy in (a, b):
        page.mouse.click(box["x"] + fx * box["width"], box["y"] + fy * box["height"])
    wait_for(page, "strips", 1)
    return page.locator("#strip > *").all()


def shown_image(page) -> str:
    page.wait_for_function("() => !busy")
    return page.locator("#decoded").get_attribute("src")


def latent(page) -> np.ndarray:
    return np.array(page.evaluate("() => z"))


def plane_at(page, fx: float, fy: float) -> tuple[np.ndarray, float]:
    """The map's plane coordinates at a fraction of its box (as click_map clicks), and the
    size of one pixel in them."""
    found = page.evaluate(
        """([fx, fy]) => {
          const c = document.getElementById("map"), r = c.getBoundingClientRect();
          const at = fromCanvas(fx * r.width - c.clientLeft, fy * r.height - c.clientTop);
          const next = fromCanvas(fx * r.width - c.clientLeft + 1, 0);
          return [at, next[0] - at[0]];
        }""",
        [fx, fy],
    )
    return np.array(found[0]), found[1]


@pytest.mark.slow
def test_the_2d_page_decodes_clicks_sliders_and_strips(mlp2):
    _, _, server = mlp2
    with browsing(server.url) as page:
        first = shown_image(page)
        click_map(page, 0.3, 0.7)
        clicked = shown_image(page)
        assert clicked != first
        z = latent(page)  # the map is the latent plane: the click set z itself
        at, pixel = plane_at(page, 0.3, 0.7)
        np.testing.assert_allclose(z, at, atol=2 * pixel)
        expected = post(server, "/api/decode", {"z": z.tolist()})["example"]
        assert clicked == expected
        drag_slider(page, 0, 0.9)
        assert shown_image(page) != clicked
        moved = latent(page)
        first_unit = get(server)["units"][0]["index"]
        assert moved[first_unit] != z[first_unit] and moved[1 - first_unit] == z[1 - first_unit]
        strip = pick_two(page, (0.2, 0.2), (0.8, 0.8))
        assert len(strip) == 10 and len({s.get_attribute("src") for s in strip}) > 2
        assert page.locator("#strip-panel").is_visible()
        assert page.locator("#legend > span").count() == 10


@pytest.mark.slow
def test_an_8d_conv_page_moves_within_the_map_plane(conv8):
    _, _, server = conv8
    state = get(server)
    directions = np.array(state["map"]["directions"])
    assert directions.shape == (2, 8) and "PC 1" in state["map"]["axes"][0]
    with browsing(server.url) as page:
        assert page.locator("#sliders input[type=range]").count() == 8
        names = page.locator("#sliders .slider-row span").all_inner_texts()
        assert names == [unit["name"] for unit in state["units"]]
        before, first = latent(page), shown_image(page)
        click_map(page, 0.65, 0.35)
        after = latent(page)
        assert shown_image(page) != first
        step = after - before  # within the plane: the sliders' values off it stay
        np.testing.assert_allclose(step - directions.T @ (directions @ step), 0, atol=1e-9)
        at, pixel = plane_at(page, 0.65, 0.35)
        np.testing.assert_allclose(directions @ (after - state["map"]["mean"]), at, atol=2 * pixel)
        image = shown_image(page)
        drag_slider(page, 3, 0.1)
        assert shown_image(page) != image
        unit = state["units"][3]["index"]
        assert latent(page)[unit] != after[unit]
        assert np.delete(latent(page), unit).tolist() == np.delete(after, unit).tolist()


def bar_values(page) -> list:
    return page.locator("#bars .bar-row").evaluate_all("rows => rows.map(r => r.dataset.value)")


@pytest.mark.slow
def test_a_table_page_shows_bars_that_follow_the_map(table, wine):
    _, _, server = table
    _, _, names = wine
    with browsing(server.url) as page:
        assert page.locator("#bars .bar-name").all_inner_texts() == names
        assert not page.locator("#decoded").is_visible()
        values = bar_values(page)
        click_map(page, 0.25, 0.25)
        page.wait_for_function("() => !busy")
        after = bar_values(page)
        assert after != values and all(v is not None for v in after)
        assert len(pick_two(page, (0.2, 0.5), (0.8, 0.5))) == 10
        assert page.locator("#strip .mini").first.locator("div").count() == 13


@pytest.mark.slow
def test_a_conditional_page_decodes_the_class_selected(labelled):
    _, _, server = labelled
    with browsing(server.url) as page:
        assert page.locator("#condition").is_visible()
        options = page.locator("#condition option").all_inner_texts()
        assert options == [str(c) for c in range(10)]
        first = shown_image(page)
        chosen = "3" if page.locator("#condition").input_value() != "3" else "8"
        done = decodes(page)
        page.select_option("#condition", chosen)
        wait_for(page, "decodes", done + 1)
        shown = shown_image(page)
        assert shown != first
        z = latent(page).tolist()
        assert shown == post(server, "/api/decode", {"z": z, "condition": int(chosen)})["example"]


@pytest.mark.slow
def test_a_covariate_page_decodes_the_covariate_set(covariates):
    with browsing(covariates.url) as page:
        assert page.locator("#covariates .slider-row span").all_inner_texts() == ["alcohol"]
        assert not page.locator("#condition").is_visible()
        values = bar_values(page)
        drag_slider(page, 0, 0.95, panel="#covariates")
        assert bar_values(page) != values


@pytest.mark.slow
def test_a_64d_page_shows_the_16_most_active_units_then_all(digits):
    X, y = digits
    vae = fitted(X[:300], n_components=64, max_epochs=1, hidden_sizes=(32,))
    server = explore(vae, X[1500:], y[1500:], image_shape=(1, 8, 8), open_browser=False,
                     block=False)  # fmt: skip
    try:
        unit = get(server)["units"][40]["index"]
        with browsing(server.url) as page:
            sliders = page.locator("#sliders input[type=range]")
            assert sliders.count() == 64
            assert [s.is_visible() for s in sliders.all()] == [True] * 16 + [False] * 48
            assert page.locator("#more").inner_text() == "Show all 64 units"
            page.click("#more")
            assert all(s.is_visible() for s in sliders.all())
            first = shown_image(page)
            click_map(page, 0.8, 0.2)
            assert shown_image(page) != first
            before = latent(page)[unit]
            drag_slider(page, 40, 0.05)
            assert latent(page)[unit] != before
    finally:
        server.stop()


# ---- the command ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    """A 2-D digits run of 3 epochs."""
    return train_run(
        "digits",
        params={"n_components": 2, "learning_rate": 3e-3, "max_epochs": 3},
        out=tmp_path_factory.mktemp("explore") / "run",
        pictures=False,
        verbose=False,
    )


@pytest.mark.slow
def test_the_command_serves_a_run_until_ctrl_c(digits_run, tmp_path):
    """``vaekit explore RUN --no-browser`` prints its address, serves the page and stops
    cleanly on Ctrl-C."""
    command = [str(VAEKIT), "explore", str(digits_run.folder), "--no-browser"]
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        preexec_fn=restore_ctrl_c,
    )
    try:
        line = process.stdout.readline()
        assert line.startswith("explorer: http://127.0.0.1:") and line.endswith(
            "/ (Ctrl-C to stop)\n"
        ), line + process.stderr.read()
        url = line.split()[1]
        with browsing(url) as page:
            assert page.title() == "vaekit explorer: vae on digits, 2-D latent"
            click_map(page, 0.35, 0.6)
            pick_two(page, (0.25, 0.3), (0.75, 0.75))
            screenshot = tmp_path / "explorer.png"
            page.screenshot(path=str(screenshot), full_page=True)
        assert Image.open(screenshot).size[0] >= 1200
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 0, err
    assert out == "explorer stopped\n" and err == ""


@pytest.mark.slow
def test_the_command_has_help_with_an_example():
    done = subprocess.run(
        [str(VAEKIT), "explore", "--help"], capture_output=True, text=True, timeout=120
    )
    assert "example:" in done.stdout and "vaekit explore runs/digits" in done.stdout
    assert "--no-browser" in done.stdout and "--port" in done.stdout
