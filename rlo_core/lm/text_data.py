"""Raw text of language-modeling data sets, loaded by name from local files.

    >>> from rlo_core.lm.text_data import load_text_splits
    >>> splits = load_text_splits("wikitext2", data_dir="./data")
    >>> text = splits.evaluation_text()   # the test split joined as the GPTQ/QuIP protocol does

Names (`spec`), with the files each reads; nothing is downloaded:

- `pydoc`: the reference documentation that ships with CPython (`pydoc_data.topics.topics`),
  cut into paragraphs; paragraph i goes to validation when i % 20 == 18, to test when
  i % 20 == 19, else to train. The variant names the Python version because the text differs
  between Python releases.
- `wikitext2[:PATH]`: WikiText-2 raw (wikitext-2-raw-v1) from `wiki.{train,valid,test}.raw`, a
  `datasets` `save_to_disk` folder, or the Hugging Face datasets cache (offline). Rows are the
  file's lines, blank lines as "", exactly as the Hugging Face loader yields them.
- `ptb[:PATH]`, `ptb-new[:PATH]`: Penn Treebank from `ptb.{train,valid,test}.txt` or a
  `save_to_disk` folder. Variant `old` evaluates on validation joined with "\\n\\n"; `new` on
  test joined with " ".
- `c4[:PATH]`, `c4-new[:PATH]`: the first shards of allenai/c4 `en`
  (`c4-train.00000-of-01024.json[.gz]`, `c4-validation.00000-of-00008.json[.gz]`). C4 has no
  test split, so evaluation uses validation. Variant `old` takes 256 random crops of
  validation documents with at least seqlen tokens (seed 0). Variant `new` joins the first
  1100 validation documents with " " and keeps 256 windows.
- `text:PATH`: a text file split into paragraphs like `pydoc`, or a folder with `train.txt`,
  `valid.txt` (or `validation.txt`) and `test.txt`.
- `hf:PATH` or `hf:NAME[:CONFIG]`: a `save_to_disk` folder, or a data set in the Hugging Face
  cache (offline), with a `text` or `sentence` column.

When `PATH` is left out, the loaders look in `data_dir` and its usual sub-folders. A missing
file raises `DataError` listing the files expected.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from rlo_core.errors import DataError

SPLITS = ("train", "validation", "test")
DATASET_NAMES = ("pydoc", "wikitext2", "ptb", "ptb-new", "c4", "c4-new", "text:PATH", "hf:PATH")


@dataclass
class TextSplits:
    """Raw text of a data set: one list of rows per split plus the evaluation recipe.

    Rows are the data set's natural units: lines of WikiText-2 (with their newline), PTB
    sentences, C4 documents, or paragraphs of pydoc and plain text files. Training tokenizes
    rows one by one and concatenates them, as the standard causal-LM recipe does. The
    fixed-window evaluation joins the rows of `eval_split` with `separator`.
    """

    name: str
    variant: str  # loader variant; record it beside every perplexity
    train: list[str]
    validation: list[str]
    test: list[str]
    separator: str = "\n\n"  # joins evaluation rows into one text
    train_separator: str = " "  # joins train rows for calibration windows, as GPTQ does
    eval_split: str = "test"
    eval_max_documents: Optional[int] = None  # c4-new keeps the first 1100 documents
    eval_max_windows: Optional[int] = None  # c4 keeps 256 windows
    eval_random_documents: bool = False  # c4-old: random crops of single documents, seed 0
    source: str = ""  # where the text was read from

    def rows(self, split: str) -> list[str]:
        """Return the rows of "train", "validation" (alias "valid") or "test"."""
        key = "validation" if split == "valid" else split
        if key not in SPLITS:
            raise DataError(f"Unknown split '{split}': use train, validation or test.")
        return getattr(self, key)

    def text(self, split: str, separator: Optional[str] = None) -> str:
        """Join the rows of `split` with `separator` (default: the evaluation separator)."""
        return (self.separator if separator is None else separator).join(self.rows(split))

    def evaluation_rows(self) -> list[str]:
        rows = self.rows(self.eval_split)
        if self.eval_max_documents is not None:
            rows = rows[: self.eval_max_documents]
        return rows

    def evaluation_text(self) -> str:
        """Return the text the fixed-window protocol tokenizes once (the c4 old variant crops
        documents instead)."""
        return self.separator.join(self.evaluation_rows())

    def describe(self) -> str:
        counts = ", ".join(f"{split} {sum(len(row) for row in self.rows(split)):,} chars"
                           for split in SPLITS)
        return f"{self.name} ({self.variant}) from {self.source}: {counts}"


def split_paragraphs(text: str) -> list[str]:
    """Cut text at blank lines; paragraphs keep their inner line breaks, without the blanks."""
    import re

    return [part.strip("\n") for part in re.split(r"\n[ \t]*\n", text) if part.strip()]


def deterministic_split(rows: list[str]) -> tuple[list[str], list[str], list[str]]:
    """Assign row i to validation when i % 20 == 18, to test when i % 20 == 19, else to train.

    Interleaving keeps all three splits drawn from the whole text (about 90/5/5 by rows)."""
    train = [row for i, row in enumerate(rows) if i % 20 < 18]
    validation = [row for i, row in enumerate(rows) if i % 20 == 18]
    test = [row for i, row in enumerate(rows) if i % 20 == 19]
    return train, validation, test


def load_pydoc() -> TextSplits:
    """CPython's pydoc topics, sorted by topic name, split by `deterministic_split`."""
    import sys

    try:
        from pydoc_data.topics import topics
    except ImportError as error:
        raise DataError("The 'pydoc' data set needs the standard-library module "
                        "pydoc_data, which this Python installation lacks. Use another "
                        "--dataset, for example text:PATH.") from error
    rows = [paragraph for key in sorted(topics) for paragraph in split_paragraphs(topics[key])]
    train, validation, test = deterministic_split(rows)
    version = f"py{sys.version_info.major}.{sys.version_info.minor}"
    return TextSplits("pydoc", f"pydoc-topics-{version}-mod20", train, validation, test,
                      separator="\n\n", train_separator="\n\n", source="pydoc_data.topics")


def parse_spec(spec: str) -> tuple[str, Optional[str]]:
    """Split `name[:argument]` into a lower-case name and the argument (a path, usually)."""
    name, _, argument = str(spec).partition(":")
    return name.strip().lower().replace("_", "-"), (argument or None)


def load_text_splits(spec: str, *, data_dir: str | Path | None = None,
                     variant: Optional[str] = None) -> TextSplits:
    """Load the raw text splits named by `spec` (see the module docstring for the names).

    `variant` picks "old" or "new" for ptb and c4 (the `-new` suffix of the name does the
    same); other data sets have one variant. Raises DataError for unknown names and missing
    files.
    """
    from rlo_core.lm import text_sources

    name, argument = parse_spec(spec)
    data_dir = Path(data_dir) if data_dir is not None else Path("./data")
    if name in ("ptb-new", "c4-new"):
        name, variant = name[:-4], "new"
    if variant is not None and name not in ("ptb", "c4"):
        raise DataError(f"Data set '{name}' has one loader variant; --variant {variant!r} "
                        "applies only to ptb and c4 (old or new).")
    if variant is not None and variant not in ("old", "new"):
        raise DataError(f"Unknown variant {variant!r} for {name}: use 'old' or 'new'.")
    if name == "pydoc":
        return load_pydoc()
    if name in ("wikitext2", "wikitext-2", "wikitext"):
        return text_sources.load_wikitext2(argument, data_dir)
    if name == "ptb":
        return text_sources.load_ptb(argument, data_dir, variant or "old")
    if name == "c4":
        return text_sources.load_c4(argument, data_dir, variant or "old")
    if name == "text":
        if not argument:
            raise DataError("Data set 'text:PATH' needs a path, for example text:notes.txt.")
        return text_sources.load_text_path(Path(argument).expanduser())
    if name == "hf":
        if not argument:
            raise DataError("Data set 'hf:PATH' needs a save_to_disk folder or a data set "
                            "name in the Hugging Face cache, for example hf:./my_corpus.")
        return text_sources.load_hf(argument)
    import difflib

    close = difflib.get_close_matches(name, ["pydoc", "wikitext2", "ptb", "c4", "text", "hf"], n=1)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    raise DataError(f"Unknown text data set '{spec}'.{hint} Valid names: "
                    f"{', '.join(DATASET_NAMES)}.")
