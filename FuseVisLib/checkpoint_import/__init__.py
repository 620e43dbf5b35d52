"""Safe import of checkpoints written by the authors' original code (or any torch.save).

Whole pickled models name notebook classes and long-gone modules; loading
them the usual way runs whatever the pickle names. Here a restricted
unpickler admits only tensor data and plain containers, keeps every other
class as an inert record, and refuses names that would run code. The
parameters and BatchNorm buffers found are mapped by name and shape onto a
registered network and saved as safetensors with a model card.

    from FuseVisLib.checkpoint_import import import_checkpoint
    imported = import_checkpoint("funfusean_epoch30.pth", "FunFuseAn")
    FuseVisLib.load_method(imported.method)      # "FunFuseAn@funfusean_epoch30"
"""
from .file_formats import read_checkpoint
from .importer import ImportedCheckpoint, import_checkpoint
from .state_extraction import find_state_dicts

__all__ = ["ImportedCheckpoint", "find_state_dicts", "import_checkpoint", "read_checkpoint"]
