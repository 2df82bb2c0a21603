"""Devices and precisions: what is there is used, what is not is a one-line error."""

import numpy as np
import pytest
import torch

import vaekit
from vaekit.engine.devices import check_precision, resolve_device
from vaekit.exceptions import ConfigError

NO_CUDA = not torch.cuda.is_available()


def test_auto_is_cuda_when_there_is_one_and_the_cpu_otherwise():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device("cpu") == torch.device("cpu")


@pytest.mark.skipif(not NO_CUDA, reason="this machine has CUDA")
@pytest.mark.parametrize("name", ["cuda", "cuda:1"])
def test_a_missing_cuda_device_is_a_one_sentence_error(name, digits):
    with pytest.raises(ConfigError) as info:
        vaekit.VAE(device=name, max_epochs=1, verbose=False).fit(digits[0][:50])
    message = str(info.value)
    assert name in message and "no CUDA device" in message and message.count(". ") == 0


@pytest.mark.skipif(torch.backends.mps.is_available(), reason="this machine has MPS")
def test_a_missing_mps_device_is_refused():
    with pytest.raises(ConfigError, match="no Apple GPU"):
        resolve_device("mps")


@pytest.mark.parametrize("name", ["gpu", "cuda:x", "CPU", 0])
def test_malformed_device_names_are_refused(name):
    with pytest.raises(ConfigError, match="device must be"):
        resolve_device(name)


def test_fp16_is_refused_on_the_cpu_before_any_training(digits):
    with pytest.raises(ConfigError, match="fp16.*needs a GPU"):
        check_precision("fp16", torch.device("cpu"))
    with pytest.raises(ConfigError, match="fp16"):
        vaekit.VAE(precision="fp16", device="cpu", verbose=False).fit(digits[0][:50])


def test_the_device_is_not_part_of_a_checkpoint_and_a_model_loads_anywhere(digits, tmp_path):
    X = digits[0][:200]
    params = dict(n_components=2, max_epochs=3, random_state=0, verbose=False)
    first = vaekit.VAE(device="cpu", **params).fit(X, checkpoint_dir=tmp_path / "ckpt")
    again = vaekit.VAE(device="auto", **params).fit(X, checkpoint_dir=tmp_path / "ckpt")
    np.testing.assert_array_equal(first.transform(X), again.transform(X))
    loaded = vaekit.load(first.save(tmp_path / "model"), device="cpu")
    assert loaded.device == "cpu" and next(loaded.module_.parameters()).device.type == "cpu"
    np.testing.assert_array_equal(loaded.transform(X), first.transform(X))


@pytest.mark.skipif(not NO_CUDA, reason="this machine has CUDA")
def test_a_model_saved_for_a_missing_device_says_how_to_load_it(digits, tmp_path):
    import json

    vae = vaekit.VAE(2, max_epochs=1, random_state=0, verbose=False).fit(digits[0][:100])
    folder = vae.save(tmp_path / "model")
    config = json.loads((folder / "config.json").read_text())
    config["params"]["device"] = "cuda"
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ConfigError, match=r"load it with vaekit.load\(folder, device='cpu'\)"):
        vaekit.load(folder)
    assert vaekit.load(folder, device="cpu").device == "cpu"
