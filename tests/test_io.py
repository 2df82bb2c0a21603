"""Saving and loading: round trips, and folders that must be refused."""

import hashlib
import json

import numpy as np
import pytest
import torch
from safetensors.torch import save as save_safetensors
from torch import nn

import vaekit
from vaekit import ModelFileError

FAST = dict(max_epochs=3, verbose=False, random_state=0)


@pytest.fixture(scope="module")
def fitted(digits):
    return vaekit.VAE(3, **FAST).fit(digits[0][:200])


@pytest.fixture
def saved(fitted, tmp_path):
    return fitted.save(tmp_path / "model")


def _rewrite_config(folder, **changes):
    path = folder / "config.json"
    config = json.loads(path.read_text())
    config.update(changes)
    path.write_text(json.dumps(config))
    return config


def _set_weights(folder, tensors):
    data = save_safetensors(tensors)
    (folder / "model.safetensors").write_bytes(data)
    _rewrite_config(folder, weights_sha256=hashlib.sha256(data).hexdigest())


def test_vae_round_trip_gives_identical_outputs(fitted, saved, digits):
    X = digits[0][200:260]
    loaded = vaekit.load(saved)
    assert loaded.get_params() == fitted.get_params()
    np.testing.assert_array_equal(loaded.transform(X), fitted.transform(X))
    np.testing.assert_array_equal(loaded.score_samples(X, 50), fitted.score_samples(X, 50))
    np.testing.assert_array_equal(loaded.sample(10), fitted.sample(10))
    assert loaded.history_ == fitted.history_
    assert sorted(p.name for p in saved.iterdir()) == [
        "config.json",
        "metrics.jsonl",
        "model.safetensors",
    ]


@pytest.mark.parametrize(
    "estimator",
    [
        vaekit.Autoencoder(4, denoising="masking", **FAST),
        vaekit.VAE(2, architecture="conv", image_shape=(1, 8, 8), channels=(4,), **FAST),
        vaekit.VAE(2, likelihood="gaussian", sigma="per_feature", **FAST),
    ],
)
def test_other_models_round_trip(estimator, digits, tmp_path):
    X = digits[0][:100]
    estimator.fit(X)
    loaded = vaekit.load(estimator.save(tmp_path / "m"))
    assert type(loaded) is type(estimator)
    assert loaded.get_params() == estimator.get_params()
    np.testing.assert_array_equal(loaded.reconstruct(X), estimator.reconstruct(X))


def test_custom_networks_need_fresh_modules_to_load(digits, tmp_path):
    def networks():
        return nn.Linear(64, 4), nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 64))

    encoder, decoder = networks()
    vae = vaekit.VAE(2, encoder=encoder, decoder=decoder, **FAST).fit(digits[0][:100])
    folder = vae.save(tmp_path / "custom")
    with pytest.raises(ModelFileError, match="custom networks"):
        vaekit.load(folder)
    fresh_encoder, fresh_decoder = networks()
    loaded = vaekit.load(folder, encoder=fresh_encoder, decoder=fresh_decoder)
    np.testing.assert_array_equal(loaded.transform(digits[0][:5]), vae.transform(digits[0][:5]))


def test_missing_files_are_refused(saved, tmp_path):
    with pytest.raises(ModelFileError, match="No model folder"):
        vaekit.load(tmp_path / "nowhere")
    (saved / "model.safetensors").unlink()
    with pytest.raises(ModelFileError, match="weights file model.safetensors is missing"):
        vaekit.load(saved)
    (saved / "config.json").unlink()
    with pytest.raises(ModelFileError, match="config.json is missing"):
        vaekit.load(saved)


def test_truncated_or_tampered_weights_are_refused(saved):
    weights = saved / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError, match="does not match the SHA256"):
        vaekit.load(saved)
    flipped = bytearray(data)
    flipped[-1] ^= 1
    weights.write_bytes(bytes(flipped))
    with pytest.raises(ModelFileError, match="does not match the SHA256"):
        vaekit.load(saved)


def test_weights_of_the_wrong_shape_or_names_are_refused(saved, fitted):
    state = {k: v.clone() for k, v in fitted.module_.state_dict().items()}
    name = next(iter(state))
    _set_weights(saved, {**state, name: torch.zeros(3, 3)})
    with pytest.raises(ModelFileError, match="cannot be rebuilt"):
        vaekit.load(saved)
    _set_weights(saved, {k: v for k, v in state.items() if k != name})
    with pytest.raises(ModelFileError, match="cannot be rebuilt"):
        vaekit.load(saved)
    _set_weights(saved, {"x": torch.zeros(1)} | state)
    with pytest.raises(ModelFileError, match="cannot be rebuilt"):
        vaekit.load(saved)


@pytest.mark.parametrize(
    "changes, message",
    [
        (dict(schema_version=99), "schema version 99"),
        (dict(format="other"), "not a vaekit model"),
        (dict(estimator="GAN"), "unknown estimator"),
        (dict(params={"n_components": 3, "depth": 4}), "unknown parameters: depth"),
        (dict(params={"n_components": "three"}), "cannot be rebuilt"),
        (dict(n_features_in=-1), "n_features_in"),
    ],
)
def test_bad_configs_are_refused(saved, changes, message):
    _rewrite_config(saved, **changes)
    with pytest.raises(ModelFileError, match=message):
        vaekit.load(saved)


def test_config_that_is_not_json_is_refused(saved):
    (saved / "config.json").write_text("{not json")
    with pytest.raises(ModelFileError, match="not valid JSON"):
        vaekit.load(saved)


def test_a_pickle_in_the_folder_is_never_read(saved):
    class Bomb:
        def __reduce__(self):
            return (exec, ("raise SystemExit('pickle executed')",))

    import pickle

    (saved / "model.safetensors").write_bytes(pickle.dumps(Bomb()))
    with pytest.raises(ModelFileError):
        vaekit.load(saved)


def test_an_interrupted_save_leaves_the_previous_model_readable(fitted, saved, monkeypatch):
    before = (saved / "config.json").read_bytes()
    real_replace = vaekit.io.os.replace

    def fail_on_config(src, dst):
        if str(dst).endswith("config.json"):
            raise KeyboardInterrupt
        real_replace(src, dst)

    monkeypatch.setattr(vaekit.io.os, "replace", fail_on_config)
    with pytest.raises(KeyboardInterrupt):
        fitted.save(saved)
    assert (saved / "config.json").read_bytes() == before
    assert not [p for p in saved.iterdir() if p.name.endswith(".tmp")]


def test_saving_onto_a_file_is_refused(fitted, tmp_path):
    target = tmp_path / "file"
    target.write_text("keep me")
    with pytest.raises(ModelFileError, match="not a folder"):
        fitted.save(target)
    assert target.read_text() == "keep me"


def test_saved_files_get_the_usual_permissions(saved):
    import os
    import stat

    umask = os.umask(0)
    os.umask(umask)
    for path in saved.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask
