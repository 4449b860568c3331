"""Materials Project crystal references: live API, local snapshot, or labelled estimate.

``sources`` builds a reference set per chemical system from each source; ``serve`` answers
per composition (hull decomposition, volume per atom, formation energy, crystals).
"""

from vitriflow.references.serve import (
    composition_reference,
    crystals_for,
    elemental_energies,
    load_snapshot_index,
    serve_references,
)
from vitriflow.references.sources import (
    SNAPSHOT_DATASETS,
    SUBSET_PATH,
    RefEntry,
    ReferenceError,
    ReferenceSet,
    build_snapshot_index,
    estimate_reference_set,
    index_snapshot,
    live_reference_set,
    open_live_client,
    snapshot_reference_set,
)

__all__ = [
    "SNAPSHOT_DATASETS", "SUBSET_PATH", "RefEntry", "ReferenceError", "ReferenceSet",
    "build_snapshot_index",
    "composition_reference", "crystals_for", "elemental_energies", "estimate_reference_set",
    "index_snapshot", "live_reference_set", "load_snapshot_index",
    "open_live_client", "serve_references", "snapshot_reference_set",
]
