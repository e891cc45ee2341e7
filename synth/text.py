"""Prompts: tokenizer, vocabulary, training templates, keyword parser and the small text encoder.

No pretrained text encoder is used: a word-level vocabulary is built from the templates (the
patterns, sequence names and lesion phrases declared in `synth.contract`) and a small
transformer is trained jointly with the UNet. Words outside the vocabulary map to `<unk>`,
which training also shows the encoder (a few template words are replaced by `<unk>`), so a free
prompt such as "Generate a diffusion weighted slice showing a tumour" still conditions on the
words it knows.

>>> tokenize("T2-weighted prostate, no lesion")
['t2', '-', 'weighted', 'prostate', ',', 'no', 'lesion']
>>> parse_prompt("Image of ADC prostate without lesion")
(<Sequence.ADC: 'ADC'>, <Lesion.NO: '0'>)
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterable
from pathlib import Path

import torch
from torch import nn

from study.imaging.types import Lesion, Sequence
from synth.contract import LESION_PHRASES, PROMPT_PATTERNS, SEQUENCE_NAMES
from synth.errors import SynthError

PAD, UNK, CLS = 0, 1, 2
SPECIAL_TOKENS = ("<pad>", "<unk>", "<cls>")

_SEQUENCE_KEYWORDS: dict[Sequence, tuple[str, ...]] = {
    Sequence.T2W: (" t2 ", " t2w ", " t2wi "),
    Sequence.ADC: (" adc ",),
    Sequence.DWI: (" dwi ", " hbv ", " diffusion ", " high b ", " b value "),
}
_NEGATIONS = frozenset(
    {"no", "without", "free", "absent", "healthy", "not", "normal", "benign", "negative"}
)
_LESION_WORDS = frozenset(
    {
        "lesion",
        "lesions",
        "tumour",
        "tumours",
        "tumor",
        "tumors",
        "cancer",
        "cancers",
        "cancerous",
        "malignant",
        "malignancy",
        "carcinoma",
        "suspicious",
    }
)


def tokenize(prompt: str) -> list[str]:
    """Lowercase words and single punctuation marks, in order."""
    return re.findall(r"\w+|[^\w\s]", prompt.lower())


def _article(sequence_name: str) -> str:
    spoken_with_vowel = sequence_name[0].lower() in "aeiou" or sequence_name.split()[0] in {
        "MR",
        "MRI",
    }
    return "An" if spoken_with_vowel else "A"


def prompt_templates(sequence: Sequence, lesion: Lesion) -> tuple[str, ...]:
    """Every training prompt for one (sequence, lesion) pair; training picks one at random."""
    prompts = []
    for pattern, name, phrase in itertools.product(
        PROMPT_PATTERNS, SEQUENCE_NAMES[sequence], LESION_PHRASES[lesion]
    ):
        text = pattern.format(article=_article(name), sequence=name, lesion=phrase)
        prompts.append(text.strip())
    return tuple(prompts)


def all_prompt_templates() -> tuple[str, ...]:
    return tuple(
        prompt
        for sequence in Sequence
        for lesion in Lesion
        for prompt in prompt_templates(sequence, lesion)
    )


def parse_prompt(prompt: str) -> tuple[Sequence | None, Lesion | None]:
    """The sequence and lesion a prompt asks for, by keywords; None where it does not say.

    Sequence keywords: t2 / t2w / t2-weighted; adc / apparent diffusion coefficient; dwi /
    diffusion(-weighted) / high-b / b-value. A prompt naming two sequences is ambiguous (None).
    Lesion: a negation ("no", "without", "free of", "absent", "healthy", "normal", ...) means
    no lesion; otherwise a lesion word ("lesion", "tumour", "cancer", ...) means a lesion.
    These are keyword rules, not grammar: pass --sequence/--lesion where they guess wrong.
    """
    words = [token for token in tokenize(prompt) if token.isalnum()]
    text = f" {' '.join(words)} "
    text = text.replace(" apparent diffusion coefficient ", " adc ")
    text = text.replace(" diffusion coefficient ", " adc ")
    found = {
        sequence
        for sequence, keywords in _SEQUENCE_KEYWORDS.items()
        if any(keyword in text for keyword in keywords)
    }
    sequence = found.pop() if len(found) == 1 else None
    if _NEGATIONS.intersection(words):
        lesion = Lesion.NO
    elif _LESION_WORDS.intersection(words):
        lesion = Lesion.YES
    else:
        lesion = None
    return sequence, lesion


class Vocabulary:
    """Word-level vocabulary: index 0 `<pad>`, 1 `<unk>`, 2 `<cls>`, then words sorted."""

    def __init__(self, tokens: Iterable[str]) -> None:
        self.tokens = tuple(tokens)
        if self.tokens[: len(SPECIAL_TOKENS)] != SPECIAL_TOKENS:
            raise SynthError(f"a vocabulary must start with {SPECIAL_TOKENS}")
        self.index = {token: i for i, token in enumerate(self.tokens)}
        if len(self.index) != len(self.tokens):
            raise SynthError("a vocabulary may not repeat a token")

    @classmethod
    def from_prompts(cls, prompts: Iterable[str]) -> Vocabulary:
        words = sorted({token for prompt in prompts for token in tokenize(prompt)})
        return cls(SPECIAL_TOKENS + tuple(words))

    @classmethod
    def from_templates(cls) -> Vocabulary:
        return cls.from_prompts(all_prompt_templates())

    def __len__(self) -> int:
        return len(self.tokens)

    def encode(self, prompt: str, length: int) -> list[int]:
        """`<cls>`, then the prompt's token ids (unknown words as `<unk>`), cut or padded."""
        ids = [CLS] + [self.index.get(token, UNK) for token in tokenize(prompt)]
        ids = ids[:length]
        return ids + [PAD] * (length - len(ids))

    def encode_batch(self, prompts: Iterable[str], length: int) -> torch.Tensor:
        return torch.tensor([self.encode(prompt, length) for prompt in prompts], dtype=torch.long)

    def save(self, path: Path) -> None:
        path.write_text(json.dumps({"tokens": list(self.tokens)}, indent=1) + "\n")

    @classmethod
    def load(cls, path: Path) -> Vocabulary:
        try:
            tokens = json.loads(path.read_text())["tokens"]
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise SynthError(f"{path}: not a vocabulary file ({error})") from error
        return cls(tokens)


class TextEncoder(nn.Module):
    """A small pre-norm transformer over token ids; the `<cls>` state summarises the prompt."""

    def __init__(
        self, vocab_size: int, width: int, layers: int, heads: int, max_tokens: int, output_dim: int
    ) -> None:
        super().__init__()
        self.token_embedding = nn.Embedding(vocab_size, width, padding_idx=PAD)
        self.position_embedding = nn.Parameter(torch.randn(max_tokens, width) * 0.02)
        layer = nn.TransformerEncoderLayer(
            width,
            heads,
            dim_feedforward=4 * width,
            dropout=0.0,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.transformer = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(width)
        self.projection = nn.Linear(width, output_dim)

    def forward(self, token_ids: torch.Tensor) -> torch.Tensor:
        """[batch, tokens] int64 -> [batch, output_dim] prompt embedding."""
        states = self.token_embedding(token_ids) + self.position_embedding[: token_ids.shape[1]]
        states = self.transformer(states, src_key_padding_mask=token_ids == PAD)
        return self.projection(self.norm(states[:, 0]))
