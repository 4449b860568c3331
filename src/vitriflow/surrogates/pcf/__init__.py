"""Pair-correlation-function surrogate (issue 7; Ayush et al.): composition + pair -> g(r).

Modules: ``checks`` (config checks at workflow start), ``fingerprint`` (the feature vector,
validated), ``data`` (training set from the DAG's RDF tables, replicas averaged), ``models``
(autoencoder / PCA / direct + random forest, scikit-learn shaped), ``evaluate`` (grouped splits,
curve and first-peak metrics), ``pipeline`` (tuning, training, outputs, :class:`PCFPredictor`),
``report`` (section 80), ``synthetic`` (peaked test curves; never used by the workflow).
"""

from vitriflow.surrogates.pcf.checks import check_pcf_config
from vitriflow.surrogates.pcf.data import PCFDataset, build_dataset
from vitriflow.surrogates.pcf.evaluate import curve_metrics, first_peak, grouped_split, latent_r2
from vitriflow.surrogates.pcf.fingerprint import PCFFingerprint, element_fractions, pair_name
from vitriflow.surrogates.pcf.models import ConvAutoencoder, PCFSurrogate
from vitriflow.surrogates.pcf.pipeline import (
    PCFPredictor,
    train_and_evaluate,
    tune_forest,
    write_outputs,
    write_skipped_outputs,
)

__all__ = [
    "ConvAutoencoder", "PCFDataset", "PCFFingerprint", "PCFPredictor", "PCFSurrogate", "build_dataset",
    "check_pcf_config",
    "curve_metrics", "element_fractions", "first_peak", "grouped_split", "latent_r2", "pair_name",
    "train_and_evaluate", "tune_forest", "write_outputs", "write_skipped_outputs",
]
