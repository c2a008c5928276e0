"""Causal language models: loading by name or folder, and tiny offline presets.

    >>> from rlo_core.lm.models import load_causal_lm
    >>> model, tokenizer = load_causal_lm("tiny-opt")          # built locally on first use
    >>> model, tokenizer = load_causal_lm("./runs/.../model")  # any saved model folder

Presets `tiny-opt` and `tiny-llama` are randomly initialised models with a few layers and a
byte-level BPE tokenizer trained with `tokenizers` on the train split of the `pydoc` text. They
are built once into the cache folder (`RLO_CACHE_DIR`, else `$XDG_CACHE_HOME/rlo`, else
`~/.cache/rlo`) as ordinary Hugging Face model folders with safetensors weights.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Optional

from rlo_core import atomic
from rlo_core.errors import ModelError

log = logging.getLogger(__name__)

PRESET_VERSION = 1  # bump when a preset's architecture or tokenizer recipe changes
PRESETS = {
    "tiny-opt": "OPT, 2 layers, hidden 128, 4 heads, context 512, BPE vocabulary 4096",
    "tiny-llama": "Llama 2, 2 layers, hidden 128, 4 heads, context 512, BPE vocabulary 4096",
}
TINY_ARCHITECTURES = ("opt", "llama2", "llama3")


def cache_dir() -> Path:
    if os.environ.get("RLO_CACHE_DIR"):
        return Path(os.environ["RLO_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "rlo"


def offline_mode() -> bool:
    """True when HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE) is set to 1/true/yes/on."""
    return any(os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")
               for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def tiny_config(architecture: str, vocab_size: int, *, hidden_size: int = 128, layers: int = 2,
                heads: int = 4, context: int = 512, special_ids: Optional[dict[str, int]] = None):
    """Build a small transformers config of the OPT, Llama 2 or Llama 3 family.

    `llama3` differs from `llama2` as the released models do: grouped-query attention (half
    as many key/value heads), rope theta 500000 and a larger RMSNorm epsilon of 1e-5.
    """
    from transformers import LlamaConfig, OPTConfig

    ids = special_ids or special_token_ids(architecture)
    if architecture == "opt":
        return OPTConfig(vocab_size=vocab_size, hidden_size=hidden_size, num_hidden_layers=layers,
                         ffn_dim=4 * hidden_size, num_attention_heads=heads,
                         max_position_embeddings=context, word_embed_proj_dim=hidden_size,
                         pad_token_id=ids["pad"], bos_token_id=ids["bos"], eos_token_id=ids["eos"])
    if architecture in ("llama2", "llama3"):
        llama3 = architecture == "llama3"
        return LlamaConfig(
            vocab_size=vocab_size, hidden_size=hidden_size, intermediate_size=(8 * hidden_size) // 3,
            num_hidden_layers=layers, num_attention_heads=heads,
            num_key_value_heads=max(1, heads // 2) if llama3 else heads,
            max_position_embeddings=context, rms_norm_eps=1e-5 if llama3 else 1e-6,
            rope_parameters={"rope_type": "default", "rope_theta": 500000.0 if llama3 else 10000.0},
            bos_token_id=ids["bos"], eos_token_id=ids["eos"], pad_token_id=None,
            tie_word_embeddings=False)
    raise ModelError(f"Unknown tiny architecture '{architecture}': use one of "
                     f"{', '.join(TINY_ARCHITECTURES)}.")


def special_token_ids(architecture: str) -> dict[str, int]:
    """Token ids of the special tokens, laid out as the original tokenizers lay them out."""
    if architecture == "opt":  # OPT: <s>=0, <pad>=1, </s>=2 (also its BOS), <unk>=3
        return {"pad": 1, "bos": 2, "eos": 2, "unk": 3}
    return {"unk": 0, "bos": 1, "eos": 2}  # Llama 2/3 style: no pad token


def train_bpe_tokenizer(texts: list[str], architecture: str, vocab_size: int):
    """Train a byte-level BPE tokenizer on `texts`; it prepends BOS as OPT and Llama do."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    if architecture == "opt":
        specials, bos, eos = ["<s>", "<pad>", "</s>", "<unk>"], "</s>", "</s>"
    else:
        specials, bos, eos = ["<unk>", "<s>", "</s>"], "<s>", "</s>"
    backend = Tokenizer(models.BPE(unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    backend.train_from_iterator(texts, trainer=trainer)
    backend.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, backend.token_to_id(bos))])
    extra = {"pad_token": "<pad>"} if architecture == "opt" else {}
    return PreTrainedTokenizerFast(tokenizer_object=backend, bos_token=bos, eos_token=eos,
                                   unk_token="<unk>", model_max_length=512, **extra)


def build_tiny_model(folder: Path, architecture: str, texts: list[str], *, vocab_size: int = 4096,
                     seed: int = 0, **config_options: Any) -> Path:
    """Train a tokenizer on `texts`, build a random tiny model and save both to `folder`."""
    import torch
    from transformers import AutoModelForCausalLM

    tokenizer = train_bpe_tokenizer(texts, "opt" if architecture == "opt" else "llama", vocab_size)
    config = tiny_config(architecture, len(tokenizer), **config_options)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def preset_folder(name: str) -> Path:
    """Return the folder of a preset, building it on first use (about 10 s on one CPU core)."""
    if name not in PRESETS:
        raise ModelError(f"Unknown preset '{name}': use one of {', '.join(PRESETS)}.")
    folder = cache_dir() / "models" / f"{name}-v{PRESET_VERSION}"
    if (folder / "config.json").is_file():
        return folder
    from rlo_core.lm.text_data import load_pydoc

    log.info("Building preset %s in %s (tokenizer trained on the pydoc train split).", name, folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        build_tiny_model(staging, "opt" if name == "tiny-opt" else "llama2", load_pydoc().train)
        os.replace(staging, folder)  # atomic: a concurrent build that finished first wins
    except OSError:
        if not (folder / "config.json").is_file():
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder


def resolve_model_path(model_id_or_path: str) -> str:
    """Map a preset name to its folder; pass paths and hub ids through."""
    if model_id_or_path in PRESETS:
        return str(preset_folder(model_id_or_path))
    local = Path(model_id_or_path).expanduser()
    if local.exists():
        return str(local)
    return model_id_or_path


def not_found_message(model_id_or_path: str, error: Exception) -> str:
    # Hub ids have the form owner/name; anything else with a slash is meant as a path.
    looks_like_path = model_id_or_path.startswith((".", "/", "~")) or model_id_or_path.count("/") > 1
    where = ("offline mode is on (HF_HUB_OFFLINE=1), so only local folders and the Hugging Face "
             "cache were searched" if offline_mode() else
             "offline mode is off, so the Hugging Face Hub was also tried")
    kind = "Model folder" if looks_like_path else "Model"
    return (f"{kind} '{model_id_or_path}' could not be loaded: {where}. Pass a "
            "local folder holding config.json, the weights and the tokenizer (for example a "
            "run's model/ folder), a model already in the Hugging Face cache, or a preset: "
            f"{', '.join(PRESETS)}. ({type(error).__name__}: {str(error).splitlines()[0][:200]})")


def load_tokenizer(model_id_or_path: str, *, trust_remote_code: bool = False):
    """Load a tokenizer. One without a pad token pads with EOS, and a warning reports it."""
    from transformers import AutoTokenizer

    path = resolve_model_path(model_id_or_path)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code,
                                                  local_files_only=offline_mode() or Path(path).exists())
    except (OSError, ValueError) as error:
        raise ModelError(remote_code_hint(error) or not_found_message(model_id_or_path, error)) from error
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            raise ModelError(f"The tokenizer of '{model_id_or_path}' has neither a pad token nor "
                             "an EOS token to pad with. Add a pad token to its tokenizer_config.json.")
        log.warning("The tokenizer of %s has no pad token; padding with EOS (%r). Padded "
                    "positions are excluded from the loss and from perplexity.",
                    model_id_or_path, tokenizer.eos_token)
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def remote_code_hint(error: Exception) -> Optional[str]:
    if "trust_remote_code" in str(error):
        return (f"This model needs code from its repository to load ({str(error).splitlines()[0]}). "
                "Only if you trust that code, pass --trust-remote-code.")
    return None


def load_causal_lm(model_id_or_path: str, *, trust_remote_code: bool = False,
                   dtype: Any = None) -> tuple[Any, Any]:
    """Load (model, tokenizer) from a preset name, a local folder or the Hugging Face cache.

    Offline mode (HF_HUB_OFFLINE=1) is honoured, so only local files are read. A ModelError
    states whether offline mode is on and how to pass a local path. `dtype` is a torch dtype or None
    for the dtype stored in the folder's config.
    """
    from transformers import AutoModelForCausalLM

    tokenizer = load_tokenizer(model_id_or_path, trust_remote_code=trust_remote_code)
    path = resolve_model_path(model_id_or_path)
    try:
        model = AutoModelForCausalLM.from_pretrained(
            path, trust_remote_code=trust_remote_code, dtype=dtype,
            local_files_only=offline_mode() or Path(path).exists())
    except (OSError, ValueError) as error:
        raise ModelError(remote_code_hint(error) or not_found_message(model_id_or_path, error)) from error
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer


def context_length(model: Any, tokenizer: Any = None) -> int:
    """Return the model's maximum sequence length (2048 for OPT, 4096 for Llama 2, 8192 for Llama 3)."""
    config = model.config
    for name in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    limit = getattr(tokenizer, "model_max_length", None)
    if isinstance(limit, int) and 0 < limit < 10**7:
        return limit
    raise ModelError(f"Could not read the context length of {type(model).__name__} from its "
                     "config (max_position_embeddings). Pass the sequence length explicitly.")


def save_causal_lm(model: Any, tokenizer: Any, folder: Path, *,
                   state_dict: Optional[dict[str, Any]] = None) -> Path:
    """Save model (safetensors) and tokenizer to `folder`, replacing it only once complete.

    `state_dict` replaces the model's own weights (the gathered weights of a sharded model).
    """

    def fill(staging: Path) -> None:
        model.save_pretrained(staging, safe_serialization=True, state_dict=state_dict)
        tokenizer.save_pretrained(staging)

    return atomic.write_folder(Path(folder), fill)
