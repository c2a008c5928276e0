"""Text splits of language-modeling data sets read from the standard on-disk layouts."""

import gzip
import json

import pytest

from rlo_core.errors import DataError
from rlo_core.lm.text_data import deterministic_split, load_pydoc, load_text_splits

WIKI_LINES = ["", " = Valkyria Chronicles = \n", "", " The game began development in 2010 .\n", ""]


def write_wikitext(folder, lines=WIKI_LINES):
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("wiki.train.raw", "wiki.valid.raw", "wiki.test.raw"):
        (folder / name).write_text("\n".join(line.rstrip("\n") for line in lines) + "\n")
    return folder


def test_pydoc_split_is_deterministic():
    first, second = load_pydoc(), load_pydoc()
    assert first.test == second.test
    assert first.validation == second.validation


def test_deterministic_split_uses_row_index():
    rows = [f"row {i}" for i in range(45)]
    train, validation, test = deterministic_split(rows)
    assert validation == ["row 18", "row 38"]
    assert test == ["row 19", "row 39"]
    assert len(train) == 41


def test_pydoc_has_text_in_every_split():
    splits = load_pydoc()
    assert min(len(splits.train), len(splits.validation), len(splits.test)) > 50
    assert splits.variant.startswith("pydoc-topics-py3.")


def test_wikitext_raw_rows_match_hf_loader(tmp_path):
    write_wikitext(tmp_path / "wikitext2")
    splits = load_text_splits("wikitext2", data_dir=tmp_path)
    assert splits.test[:4] == ["", " = Valkyria Chronicles = \n", "", " The game began development in 2010 .\n"]
    assert splits.variant == "wikitext-2-raw-v1"


def test_wikitext_evaluation_text_joins_with_blank_lines(tmp_path):
    write_wikitext(tmp_path / "w")
    splits = load_text_splits(f"wikitext2:{tmp_path / 'w'}")
    assert splits.evaluation_text() == "\n\n".join(splits.test)


def test_wikitext_missing_files_are_listed(tmp_path):
    with pytest.raises(DataError, match="wiki.test.raw"):
        load_text_splits(f"wikitext2:{tmp_path / 'missing'}")


def test_wikitext_tokens_variant_is_rejected(tmp_path):
    folder = tmp_path / "wikitext2"
    folder.mkdir()
    for name in ("wiki.train.tokens", "wiki.valid.tokens", "wiki.test.tokens"):
        (folder / name).write_text(" = A = \n")
    with pytest.raises(DataError, match="raw variant"):
        load_text_splits("wikitext2", data_dir=tmp_path)


def test_wikitext_from_save_to_disk(tmp_path):
    import datasets

    rows = {"text": [" = A = \n", "", " b c\n"]}
    datasets.DatasetDict({split: datasets.Dataset.from_dict(rows)
                          for split in ("train", "validation", "test")}).save_to_disk(str(tmp_path / "saved"))
    splits = load_text_splits(f"wikitext2:{tmp_path / 'saved'}")
    assert splits.validation == rows["text"]


def write_ptb(folder):
    folder.mkdir(parents=True)
    for split in ("train", "valid", "test"):
        (folder / f"ptb.{split}.txt").write_text(f" {split} one\n {split} two\n")


def test_ptb_old_evaluates_validation_with_blank_lines(tmp_path):
    write_ptb(tmp_path / "ptb")
    splits = load_text_splits("ptb", data_dir=tmp_path)
    assert splits.evaluation_text() == "valid one\n\nvalid two"


def test_ptb_new_evaluates_test_with_spaces(tmp_path):
    write_ptb(tmp_path / "ptb")
    splits = load_text_splits("ptb-new", data_dir=tmp_path)
    assert splits.evaluation_text() == "test one test two"


def write_c4(folder, documents=1200):
    folder.mkdir(parents=True)
    with gzip.open(folder / "c4-validation.00000-of-00008.json.gz", "wt") as handle:
        for i in range(documents):
            handle.write(json.dumps({"text": f"doc {i}", "url": "u"}) + "\n")


def test_c4_new_keeps_first_1100_documents(tmp_path):
    write_c4(tmp_path / "c4")
    splits = load_text_splits("c4-new", data_dir=tmp_path)
    assert len(splits.evaluation_rows()) == 1100


def test_c4_old_uses_random_document_crops(tmp_path):
    write_c4(tmp_path / "c4", documents=3)
    splits = load_text_splits("c4", data_dir=tmp_path)
    assert splits.eval_random_documents
    assert splits.variant == "c4-old"


def test_c4_missing_shard_is_named(tmp_path):
    with pytest.raises(DataError, match="c4-validation.00000-of-00008.json"):
        load_text_splits("c4", data_dir=tmp_path)


def test_text_file_is_split_into_paragraphs(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("\n\n".join(f"Paragraph {i}\nsecond line" for i in range(40)))
    splits = load_text_splits(f"text:{path}")
    assert splits.test == ["Paragraph 19\nsecond line", "Paragraph 39\nsecond line"]


def test_text_file_too_short_is_rejected(tmp_path):
    path = tmp_path / "short.txt"
    path.write_text("one\n\ntwo")
    with pytest.raises(DataError, match="at least 20"):
        load_text_splits(f"text:{path}")


def test_unknown_dataset_suggests_name():
    with pytest.raises(DataError, match="Did you mean 'wikitext2'"):
        load_text_splits("wikitext3")


def test_variant_applies_only_to_ptb_and_c4():
    with pytest.raises(DataError, match="ptb and c4"):
        load_text_splits("pydoc", variant="new")
