"""Model presets, the conditional UNet, and checkpoints on disk."""

from __future__ import annotations

import json

import pytest
import torch

from synth import checkpoint
from synth.checkpoint import checkpoint_sha256, load_checkpoint, save_checkpoint
from synth.errors import SynthError
from synth.model import PRESETS, ConditionalUNet, build_network, model_config, parameter_count
from synth.text import Vocabulary

pytestmark = pytest.mark.usefixtures("one_thread")

VOCABULARY = Vocabulary.from_templates()


def _inputs(config, count: int = 2, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    size = config.image_size
    noisy = torch.randn(count, 1, size, size, generator=generator)
    condition = torch.rand(count, 1, size, size, generator=generator) * 2 - 1
    tokens = VOCABULARY.encode_batch(["T2 prostate with a lesion"] * count, config.max_tokens)
    return noisy, torch.tensor([10, 900]), tokens, condition


def _outputs(network: ConditionalUNet, mask: torch.Tensor) -> torch.Tensor:
    noisy, timesteps, tokens, condition = _inputs(network.config)
    with torch.no_grad():
        return network(noisy, timesteps, tokens, condition, mask)


def test_presets_sizes_and_parameter_counts() -> None:
    assert {name: config.image_size for name, config in PRESETS.items()} == {
        "tiny": 32,
        "small": 64,
        "default": 128,
    }
    tiny = build_network(model_config("tiny"), len(VOCABULARY), seed=0)
    default = build_network(model_config("default"), len(VOCABULARY), seed=0)
    assert parameter_count(tiny) < 100_000
    assert 10_000_000 <= parameter_count(default) <= 30_000_000
    assert len(model_config("tiny").block_out_channels) == 2


def test_model_config_rejects_what_it_cannot_build() -> None:
    assert model_config("small", 96).image_size == 96
    with pytest.raises(SynthError, match="unknown model preset 'huge'"):
        model_config("huge")
    with pytest.raises(SynthError, match="multiple of 16"):
        model_config("default", 100)
    with pytest.raises(SynthError, match="from 32 to 256"):
        model_config("default", 512)


def test_network_output_and_condition_mask() -> None:
    network = build_network(model_config("tiny"), len(VOCABULARY), seed=0).eval()
    unmasked = _outputs(network, torch.ones(2))
    masked = _outputs(network, torch.zeros(2))
    assert unmasked.shape == (2, 1, 32, 32) and unmasked.dtype == torch.float32
    assert not torch.allclose(unmasked, masked)
    noisy, timesteps, tokens, condition = _inputs(network.config)
    with torch.no_grad():
        other_condition = network(noisy, timesteps, tokens, -condition, torch.zeros(2))
    torch.testing.assert_close(masked, other_condition, rtol=0, atol=0)


def test_build_network_is_seeded() -> None:
    config = model_config("tiny")
    first = build_network(config, len(VOCABULARY), seed=3).state_dict()
    again = build_network(config, len(VOCABULARY), seed=3).state_dict()
    other = build_network(config, len(VOCABULARY), seed=4).state_dict()
    assert all(torch.equal(first[name], again[name]) for name in first)
    assert not all(torch.equal(first[name], other[name]) for name in first)


@pytest.mark.parametrize("half", [False, True])
def test_checkpoint_round_trips(tmp_path, half: bool) -> None:
    config = model_config("tiny")
    network = build_network(config, len(VOCABULARY), seed=1).eval()
    training = {"steps": 7, "training_manifest_sha256": "0" * 64}
    sha = save_checkpoint(
        tmp_path / "a", network.state_dict(), config, VOCABULARY, training, half=half
    )
    loaded = load_checkpoint(tmp_path / "a")
    assert loaded.sha256 == sha == checkpoint_sha256(tmp_path / "a")
    assert loaded.config == config and loaded.training == training
    assert loaded.name == "vtt-synth-diffusion/tiny"
    document = json.loads((tmp_path / "a" / "config.json").read_text())
    assert document["weights_dtype"] == ("float16" if half else "float32")
    assert document["model"]["prediction_type"] == "v_prediction"
    assert all(p.dtype == torch.float32 for p in loaded.network.parameters())

    resaved = save_checkpoint(
        tmp_path / "b", loaded.network.state_dict(), config, VOCABULARY, training, half=half
    )
    assert resaved == sha
    reloaded = load_checkpoint(tmp_path / "b")
    mask = torch.ones(2)
    torch.testing.assert_close(
        _outputs(loaded.network, mask), _outputs(reloaded.network, mask), rtol=0, atol=0
    )
    original = _outputs(network, mask)
    tolerance = 1e-2 if half else 0.0
    torch.testing.assert_close(_outputs(loaded.network, mask), original, rtol=0, atol=tolerance)


def test_large_weights_are_sharded(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(checkpoint, "MAX_SHARD_BYTES", 40_000)
    config = model_config("tiny")
    network = build_network(config, len(VOCABULARY), seed=1).eval()
    save_checkpoint(tmp_path, network.state_dict(), config, VOCABULARY, {})
    names = [path.name for path in checkpoint.weight_files(tmp_path)]
    assert names[0] == "text_encoder.safetensors"
    assert len(names) > 2 and names[1].startswith("unet-00001-of-")
    loaded = load_checkpoint(tmp_path)
    for name, tensor in network.state_dict().items():
        assert torch.equal(loaded.network.state_dict()[name], tensor)
    monkeypatch.setattr(checkpoint, "MAX_SHARD_BYTES", 12 * 2**20)
    save_checkpoint(tmp_path, network.state_dict(), config, VOCABULARY, {})
    assert [p.name for p in checkpoint.weight_files(tmp_path)] == [
        "text_encoder.safetensors",
        "unet.safetensors",
    ]


def test_loading_a_folder_that_is_not_a_checkpoint(tmp_path) -> None:
    with pytest.raises(SynthError, match="is not a checkpoint"):
        load_checkpoint(tmp_path)
    with pytest.raises(SynthError, match="no weight files"):
        checkpoint_sha256(tmp_path)
