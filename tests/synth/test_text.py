"""Prompts: tokenizer, vocabulary, templates, keyword parser, text encoder."""

from __future__ import annotations

import pytest
import torch

from study.imaging.types import Lesion, Sequence
from synth.errors import SynthError
from synth.text import (
    CLS,
    PAD,
    UNK,
    TextEncoder,
    Vocabulary,
    parse_prompt,
    prompt_templates,
    tokenize,
)

LABELLED = [(s, lesion) for s in (Sequence.T2W, Sequence.ADC, Sequence.DWI) for lesion in Lesion]


def test_tokenize_lowercases_and_splits_punctuation() -> None:
    assert tokenize("A T2-weighted image, NO lesion!") == [
        "a",
        "t2",
        "-",
        "weighted",
        "image",
        ",",
        "no",
        "lesion",
        "!",
    ]


@pytest.mark.parametrize("sequence", [Sequence.T2W, Sequence.ADC, Sequence.DWI])
@pytest.mark.parametrize("lesion", [Lesion.YES, Lesion.NO])
def test_at_least_eight_distinct_templates_per_label(sequence: Sequence, lesion: Lesion) -> None:
    templates = prompt_templates(sequence, lesion)
    assert len(set(templates)) >= 8
    assert all(template == template.strip() and template for template in templates)


def test_templates_include_the_papers_prompts() -> None:
    assert "A T2 image of a prostate with a lesion" in prompt_templates(Sequence.T2W, Lesion.YES)
    assert "ADC image of a prostate with no lesion" in prompt_templates(Sequence.ADC, Lesion.NO)
    assert "Image of ADC prostate without lesion" in prompt_templates(Sequence.ADC, Lesion.NO)


@pytest.mark.parametrize(("sequence", "lesion"), LABELLED)
def test_parse_prompt_reads_back_every_template(sequence: Sequence, lesion: Lesion) -> None:
    expected_lesion = None if lesion == Lesion.UNKNOWN else lesion
    for template in prompt_templates(sequence, lesion):
        assert parse_prompt(template) == (sequence, expected_lesion), template


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ("A T2 image of a prostate with a lesion", (Sequence.T2W, Lesion.YES)),
        ("ADC image of a prostate with no lesion", (Sequence.ADC, Lesion.NO)),
        ("Image of ADC prostate without lesion", (Sequence.ADC, Lesion.NO)),
        ("t2w prostate, tumour", (Sequence.T2W, Lesion.YES)),
        ("T2-weighted prostate free of cancer", (Sequence.T2W, Lesion.NO)),
        ("high-b DWI slice, lesion absent", (Sequence.DWI, Lesion.NO)),
        ("healthy diffusion-weighted prostate", (Sequence.DWI, Lesion.NO)),
        ("apparent diffusion coefficient map with cancer", (Sequence.ADC, Lesion.YES)),
        ("prostate MRI with a tumour", (None, Lesion.YES)),
        ("T2 and ADC of a prostate", (None, None)),
        ("a picture", (None, None)),
    ],
)
def test_parse_prompt_on_free_prompts(
    prompt: str, expected: tuple[Sequence | None, Lesion | None]
) -> None:
    assert parse_prompt(prompt) == expected


def test_vocabulary_maps_unknown_words_and_pads() -> None:
    vocabulary = Vocabulary.from_templates()
    assert vocabulary.tokens[:3] == ("<pad>", "<unk>", "<cls>")
    ids = vocabulary.encode("Generate a T2 prostate zzzz", 8)
    assert ids[0] == CLS
    assert ids[1] == UNK and ids[5] == UNK
    assert ids[2] == vocabulary.index["a"] and ids[3] == vocabulary.index["t2"]
    assert ids[6:] == [PAD, PAD]
    assert len(vocabulary.encode("word " * 40, 8)) == 8


def test_vocabulary_round_trips_through_json(tmp_path) -> None:
    vocabulary = Vocabulary.from_templates()
    vocabulary.save(tmp_path / "vocab.json")
    assert Vocabulary.load(tmp_path / "vocab.json").tokens == vocabulary.tokens
    (tmp_path / "bad.json").write_text("[1, 2]")
    with pytest.raises(SynthError, match="not a vocabulary"):
        Vocabulary.load(tmp_path / "bad.json")


def test_text_encoder_ignores_padding() -> None:
    torch.manual_seed(0)
    vocabulary = Vocabulary.from_templates()
    encoder = TextEncoder(len(vocabulary), 16, 1, 2, 24, 12).eval()
    prompts = ["DWI of a prostate with cancer", "healthy T2"]
    with torch.no_grad():
        short = encoder(vocabulary.encode_batch(prompts, 10))
        long = encoder(vocabulary.encode_batch(prompts, 24))
        empty = encoder(vocabulary.encode_batch([""], 24))
    assert short.shape == (2, 12)
    torch.testing.assert_close(short, long, rtol=0, atol=1e-5)
    assert not torch.allclose(short[0], short[1])
    assert not torch.allclose(empty[0], short[0])
