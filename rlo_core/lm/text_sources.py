"""Readers of the on-disk layouts behind `load_text_splits`: raw files, `save_to_disk`
folders and the Hugging Face datasets cache. Every reader returns a `TextSplits`."""

from __future__ import annotations

import gzip
import json
import logging
from pathlib import Path
from typing import Iterable, Optional

from rlo_core.errors import DataError
from rlo_core.lm.text_data import TextSplits, deterministic_split, split_paragraphs

log = logging.getLogger(__name__)

WIKITEXT_FILES = {"train": "wiki.train.raw", "validation": "wiki.valid.raw",
                  "test": "wiki.test.raw"}
PTB_FILES = {"train": "ptb.train.txt", "validation": "ptb.valid.txt", "test": "ptb.test.txt"}
C4_FILES = {"train": "c4-train.00000-of-01024.json", "validation": "c4-validation.00000-of-00008.json"}
SPLIT_ALIASES = {"train": ("train",), "validation": ("validation", "valid", "dev"),
                 "test": ("test",)}


def candidate_dirs(argument: Optional[str], data_dir: Path, names: Iterable[str]) -> list[Path]:
    """List the folders to search: the one given after the colon, or `data_dir` and its named
    sub-folders, each followed by its child folders."""
    if argument:
        roots = [Path(argument).expanduser()]
    else:
        roots = [data_dir / name for name in names] + [data_dir]
    found = []
    for root in roots:
        found.append(root)
        if root.is_dir():
            found.extend(sorted(child for child in root.iterdir() if child.is_dir()))
    return found


def read_lines(path: Path) -> list[str]:
    """Lines as the Hugging Face wikitext loader yields them: newline kept, blank lines as ""."""
    with open(path, encoding="utf-8") as handle:
        return [line if line.strip() else "" for line in handle]


def find_files(folders: list[Path], files: dict[str, str]) -> Optional[dict[str, Path]]:
    for folder in folders:
        paths = {split: folder / name for split, name in files.items()}
        if all(path.is_file() for path in paths.values()):
            return paths
    return None


def missing_files_error(dataset: str, folders: list[Path], files: Iterable[str], how: str) -> DataError:
    searched = ", ".join(str(folder) for folder in folders[:6])
    more = f" and {len(folders) - 6} more" if len(folders) > 6 else ""
    return DataError(f"{dataset} was not found. Searched {searched}{more} for "
                     f"{', '.join(files)}. {how}")


def rows_from_dataset_dict(dataset_dict, columns=("text", "sentence", "content")) -> dict[str, list[str]]:
    """Map train/validation/test (and their aliases) of a DatasetDict to lists of strings."""
    result: dict[str, list[str]] = {}
    for split, aliases in SPLIT_ALIASES.items():
        key = next((alias for alias in aliases if alias in dataset_dict), None)
        if key is None:
            continue
        table = dataset_dict[key]
        column = next((name for name in columns if name in table.column_names), None)
        if column is None:
            strings = [name for name, feature in table.features.items()
                       if getattr(feature, "dtype", None) in ("string", "large_string")]
            if len(strings) != 1:
                raise DataError(f"Split '{key}' has columns {table.column_names}; expected a "
                                f"text column named {', '.join(columns)} or exactly one string "
                                "column.")
            column = strings[0]
        result[split] = [str(value) for value in table[column]]
    return result


def load_saved_dataset(folder: Path) -> dict[str, list[str]]:
    import datasets

    try:
        loaded = datasets.load_from_disk(str(folder))
    except (FileNotFoundError, ValueError) as error:
        raise DataError(f"Could not load the save_to_disk folder {folder}: {error}") from error
    if isinstance(loaded, datasets.Dataset):
        loaded = datasets.DatasetDict({"train": loaded})
    return rows_from_dataset_dict(loaded)


def splits_from_rows(rows: dict[str, list[str]], source: str) -> tuple[list[str], list[str], list[str], str]:
    """Fill in missing validation/test splits by `deterministic_split` of train."""
    if "train" not in rows:
        raise DataError(f"{source} has no train split; found {', '.join(rows) or 'none'}.")
    if "validation" in rows and "test" in rows:
        return rows["train"], rows["validation"], rows["test"], "given"
    train, validation, test = deterministic_split(rows["train"])
    return train, rows.get("validation", validation), rows.get("test", test), "mod20"


def load_wikitext2(argument: Optional[str], data_dir: Path) -> TextSplits:
    folders = candidate_dirs(argument, data_dir, ("wikitext2", "wikitext-2-raw", "wikitext-2-raw-v1",
                                                  "wikitext-2", "wikitext"))
    paths = find_files(folders, WIKITEXT_FILES)
    if paths is not None:
        rows = {split: read_lines(path) for split, path in paths.items()}
        return TextSplits("wikitext2", "wikitext-2-raw-v1", rows["train"], rows["validation"],
                          rows["test"], separator="\n\n", train_separator=" ",
                          source=str(paths["test"].parent))
    if find_files(folders, {s: n.replace(".raw", ".tokens") for s, n in WIKITEXT_FILES.items()}):
        raise DataError("Found wiki.*.tokens (WikiText-2 v1, with <unk> tokens) but not "
                        "wiki.*.raw. rlo trains and evaluates on the raw variant only, so "
                        "results compare with published perplexities: use wikitext-2-raw-v1.")
    for folder in folders:
        if (folder / "dataset_dict.json").is_file():
            rows = load_saved_dataset(folder)
            train, validation, test, _ = splits_from_rows(rows, str(folder))
            return TextSplits("wikitext2", "wikitext-2-raw-v1", train, validation, test,
                              source=str(folder))
    if argument is None:
        cached = load_cached_dataset(("Salesforce/wikitext", "wikitext"), "wikitext-2-raw-v1")
        if cached is not None:
            rows, source = cached
            return TextSplits("wikitext2", "wikitext-2-raw-v1", rows["train"], rows["validation"],
                              rows["test"], source=source)
    raise missing_files_error(
        "WikiText-2 (raw)", folders, WIKITEXT_FILES.values(),
        "Put the wikitext-2-raw files in --data-dir/wikitext2, pass wikitext2:FOLDER, or a "
        "datasets save_to_disk folder with train/validation/test splits.")


def load_ptb(argument: Optional[str], data_dir: Path, variant: str) -> TextSplits:
    folders = candidate_dirs(argument, data_dir, ("ptb", "penn-treebank", "simple-examples/data"))
    paths = find_files(folders, PTB_FILES)
    if paths is not None:
        rows = {split: [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
                for split, path in paths.items()}
        source = str(paths["test"].parent)
    else:
        folder = next((f for f in folders if (f / "dataset_dict.json").is_file()), None)
        if folder is None:
            raise missing_files_error(
                "Penn Treebank", folders, PTB_FILES.values(),
                "Put the files in --data-dir/ptb, pass ptb:FOLDER, or a datasets save_to_disk "
                "folder with a 'sentence' column.")
        rows = load_saved_dataset(folder)
        source = str(folder)
    missing = [split for split in ("train", "validation", "test") if split not in rows]
    if missing:
        raise DataError(f"Penn Treebank at {source} lacks the split(s) {', '.join(missing)}.")
    if variant == "new":
        return TextSplits("ptb", "ptb-new", rows["train"], rows["validation"], rows["test"],
                          separator=" ", eval_split="test", source=source)
    return TextSplits("ptb", "ptb-old", rows["train"], rows["validation"], rows["test"],
                      separator="\n\n", eval_split="validation", source=source)


def read_json_lines(path: Path) -> list[str]:
    opener = gzip.open if path.suffix == ".gz" else open
    rows = []
    with opener(path, "rt", encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line)["text"])
            except (json.JSONDecodeError, KeyError, TypeError) as error:
                raise DataError(f"{path}, line {number}: expected a JSON object with a 'text' "
                                f"field ({error}).") from error
    return rows


def load_c4(argument: Optional[str], data_dir: Path, variant: str) -> TextSplits:
    folders = candidate_dirs(argument, data_dir, ("c4", "c4/en", "allenai-c4", "en"))
    paths: dict[str, Path] = {}
    for split, name in C4_FILES.items():
        for folder in folders:
            found = next((folder / f"{name}{suffix}" for suffix in ("", ".gz")
                          if (folder / f"{name}{suffix}").is_file()), None)
            if found is not None:
                paths[split] = found
                break
    if "validation" not in paths:
        raise missing_files_error(
            "C4", folders, [f"{name}[.gz]" for name in C4_FILES.values()],
            "Put the first allenai/c4 'en' shards in --data-dir/c4 or pass c4:FOLDER. "
            "The train shard is needed only for finetuning and calibration.")
    validation = read_json_lines(paths["validation"])
    train = read_json_lines(paths["train"]) if "train" in paths else []
    source = str(paths["validation"].parent)
    if variant == "new":
        return TextSplits("c4", "c4-new", train, validation, [], separator=" ",
                          eval_split="validation", eval_max_documents=1100, eval_max_windows=256,
                          source=source)
    return TextSplits("c4", "c4-old", train, validation, [], separator=" ",
                      eval_split="validation", eval_max_windows=256, eval_random_documents=True,
                      source=source)


def load_text_path(path: Path) -> TextSplits:
    if path.is_file():
        rows = split_paragraphs(path.read_text(encoding="utf-8"))
        if len(rows) < 20:
            raise DataError(f"{path} has {len(rows)} paragraphs; text:PATH splits a file by "
                            "blank lines into train/validation/test and needs at least 20. "
                            "Pass a folder with train.txt, valid.txt and test.txt instead.")
        train, validation, test = deterministic_split(rows)
        return TextSplits("text", "paragraphs-mod20", train, validation, test, separator="\n\n",
                          train_separator="\n\n", source=str(path))
    files = {"train": ("train.txt",), "validation": ("valid.txt", "validation.txt"),
             "test": ("test.txt",)}
    if path.is_dir():
        found = {split: next((path / n for n in names if (path / n).is_file()), None)
                 for split, names in files.items()}
        if all(found.values()):
            rows = {split: split_paragraphs(p.read_text(encoding="utf-8")) for split, p in found.items()}
            return TextSplits("text", "paragraphs-files", rows["train"], rows["validation"],
                              rows["test"], separator="\n\n", train_separator="\n\n",
                              source=str(path))
    raise DataError(f"Text data {path} was not found: pass a text file, or a folder with "
                    "train.txt, valid.txt (or validation.txt) and test.txt.")


def load_cached_dataset(names: Iterable[str], config: Optional[str]) -> Optional[tuple[dict, str]]:
    """Load a data set from the Hugging Face cache; None when no name is cached."""
    import datasets

    for name in names:
        try:
            loaded = datasets.load_dataset(name, config)
        except Exception as error:  # datasets raises many types for "not cached"
            log.debug("Hugging Face cache has no %s/%s: %s", name, config, error)
            continue
        return rows_from_dataset_dict(loaded), f"Hugging Face cache ({name}, {config})"
    return None


def load_hf(argument: str) -> TextSplits:
    folder = Path(argument).expanduser()
    if folder.is_dir():
        rows, source = load_saved_dataset(folder), str(folder)
    else:
        name, _, config = argument.partition(":")
        cached = load_cached_dataset((name,), config or None)
        if cached is None:
            raise DataError(f"hf:{argument} is neither a save_to_disk folder nor a data set in "
                            "the Hugging Face cache. Pass the folder written by "
                            "Dataset.save_to_disk, or cache the data set first (offline mode "
                            "reads only the cache).")
        rows, source = cached
    train, validation, test, how = splits_from_rows(rows, source)
    return TextSplits("hf", f"hf-{how}", train, validation, test, separator="\n\n",
                      train_separator="\n\n", source=source)
