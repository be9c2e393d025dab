"""What the catalog lists: one ModelEntry per model, with its family's descriptor."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from studio.core import families
from studio.core.settings import Settings
from studio.core.text import human_bytes

#: roles: "generate" models are what pickers offer; the others are shown in the
#: Models view only ("preview" = a tiny autoencoder for previews, "component" =
#: VAE/LoRA/UNet pieces, "other" = a pipeline Studio's engines do not run).
ROLES = ("generate", "preview", "component", "other")

PICKLED_FORMATS = ("ckpt", "pickle")
PICKLE_NOTE = "Pickled checkpoint: turn on 'Allow pickled checkpoints' in Settings to use it."


@dataclass(frozen=True)
class ModelEntry:
    id: str  # what requests carry: "builtin:…" or an absolute path
    name: str  # what pickers show
    modality: str  # "image" | "text" | "music"
    family: str  # "SD 1.x", "SDXL", "causal LM", "MusicGen", "composer", "GAN", ...
    format: str  # "builtin", "diffusers", "safetensors", "ckpt", "transformers", "gguf"
    location: str  # where it was found: models/, a settings folder, the HF cache, a package
    size_bytes: int = 0
    explorable: bool = False  # has a latent space the explorer can drive
    source: str = ""  # "builtin" | "models" | "folder" | "hf-cache"
    role: str = "generate"  # see ROLES
    pickled: bool = False  # weights are a pickle (needs settings.allow_pickle)
    repo_id: str = ""  # the Hugging Face repo id, when known
    note: str = ""  # one line worth showing (why it is not usable, ...)
    family_id: str = ""  # studio.core.families id ("sd1", "gan-eyes", ...); "" = by name
    #: what an add-on runs over, where its file says it: an image LoRA's base family
    #: ("SD 1.x"), a text LoRA's base model id
    base: str = ""

    @property
    def descriptor(self) -> families.Family | None:
        """The family's descriptor: what it serves, which fields apply, how it explores."""
        return families.get(self.family_id) if self.family_id else families.by_name(self.family)

    @property
    def path(self) -> Path | None:
        """The file or folder on disk (None for built-ins)."""
        return None if self.id.startswith("builtin:") else Path(self.id)

    def usable(self, settings: Settings | None = None) -> bool:
        """Whether a picker should offer it: a generator, and not a pickle the user refused."""
        if self.role != "generate":
            return False
        return not (self.pickled and settings is not None and not settings.allow_pickle)


def entry_for(family: families.Family, model_id: str, name: str, fmt: str, size: int = 0, *,
              pickled: bool = False, note: str = "") -> ModelEntry:
    """An entry of a known family: modality, display name, role and explorability come
    from its descriptor, so they cannot disagree with it (callers fill in the location)."""
    return ModelEntry(model_id, name, family.modality, family.name, fmt, "", size,
                      explorable=family.explorable, role=family.role, pickled=pickled,
                      note=note, family_id=family.id)


format_size = human_bytes  # the one byte-size formatter (studio.core.text), by its old name
