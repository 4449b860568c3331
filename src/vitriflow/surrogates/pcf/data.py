"""Training set from the DAG: partial RDFs of a family of systems, replicas averaged.

Inputs per system (docs/CONTRACTS.md): ``results/analysis/{system}/rdf.parquet`` (long format
``structure_id, composition_index, replica, label, pair, r_A, g``) and
``results/structures/{system}/compositions.parquet`` (``oxide_<Oxide>`` / ``x_<El>`` fractions).
One sample is one (composition, pair): the mean g(r) over replicas, with the per-point standard
deviation kept as the target's uncertainty. Compositions are grouped by their fraction vector,
so the same glass appearing in two systems lands on the same side of every split.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from vitriflow.io import read_table
from vitriflow.surrogates.pcf.fingerprint import PCFFingerprint, split_pair

RDF_COLUMNS = ("composition_index", "replica", "label", "pair", "r_A", "g")
PREFIX = {"oxide": "oxide_", "element": "x_"}
NORM_TOL = 1e-3


@dataclass
class PCFDataset:
    r: np.ndarray            # (L,) common r-grid, Angstrom
    y: np.ndarray            # (n, L) replica-mean g(r)
    y_std: np.ndarray        # (n, L) replica standard deviation (0 for a single replica)
    meta: pd.DataFrame  # n rows: system, composition_index, label, pair, group, n_replicas, frac_*
    components: list[str]    # component names in fingerprint order

    def fractions(self, i: int) -> dict[str, float]:
        row = self.meta.iloc[i]
        return {c: float(row[f"frac_{c}"]) for c in self.components if row[f"frac_{c}"] > 0}

    def features(self, fp: PCFFingerprint) -> np.ndarray:
        return fp.encode_many((self.fractions(i), p) for i, p in enumerate(self.meta["pair"]))

    @property
    def groups(self) -> np.ndarray:
        return self.meta["group"].to_numpy()

    def subset(self, idx) -> PCFDataset:
        idx = np.asarray(idx)
        return PCFDataset(self.r, self.y[idx], self.y_std[idx],
                          self.meta.iloc[idx].reset_index(drop=True), self.components)

    def to_long(self) -> pd.DataFrame:
        """Long table (one row per sample and r) for the dataset output."""
        n, length = self.y.shape
        rep = self.meta.loc[self.meta.index.repeat(length)].reset_index(drop=True)
        rep["r_A"] = np.tile(self.r, n)
        rep["g_mean"] = self.y.ravel()
        rep["g_std"] = self.y_std.ravel()
        return rep


def _composition_key(fr: dict[str, float]) -> str:
    return ",".join(f"{k}={v:.6f}" for k, v in sorted(fr.items()) if v > 0)


def load_system(rdf_path: str | os.PathLike, comp_path: str | os.PathLike, system: str,
                basis: str = "oxide") -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read and check one system's RDF and composition tables."""
    rdf, _ = read_table(rdf_path)
    missing = [c for c in RDF_COLUMNS if c not in rdf.columns]
    if missing:
        raise ValueError(f"{rdf_path}: missing columns {missing}; expected {list(RDF_COLUMNS)}")
    if "status" in rdf.columns:
        rdf = rdf[rdf["status"] == "ok"]
    comps, _ = read_table(comp_path)
    prefix = PREFIX[basis]
    cols = [c for c in comps.columns if c.startswith(prefix)]
    if not cols:
        raise ValueError(f"{comp_path}: no '{prefix}*' columns for pcf.basis={basis!r}"
                         + (" (declare the system in oxides or set pcf.basis: element)"
                            if basis == "oxide" else ""))
    fr = comps[cols].fillna(0.0).to_numpy(dtype=float)
    sums = fr.sum(axis=1)
    bad = np.flatnonzero((np.abs(sums - 1) > NORM_TOL) | (fr < 0).any(axis=1))
    if len(bad):
        i = int(bad[0])
        raise ValueError(f"{comp_path}: row "
                         f"composition_index={int(comps['composition_index'].iloc[i])} has "
                         f"fractions summing to {sums[i]:.6g} or negative; expected "
                         "non-negative, sum 1")
    comps = comps[["composition_index", "label"] + cols].copy()
    comps[cols] = fr / sums[:, None]
    comps = comps.rename(columns={c: "frac_" + c[len(prefix):] for c in cols})
    comps["system"] = system
    return rdf, comps


def build_dataset(systems: Sequence[tuple[str, str | os.PathLike, str | os.PathLike]],
                  pairs: str | Sequence[str] = "all", basis: str = "oxide",
                  r_max: float | None = None, smoothing_A: float = 0.0) -> PCFDataset:
    """Average replicas and assemble samples of every (composition, pair) of the family.

    ``systems``: (name, rdf.parquet, compositions.parquet) per system. ``pairs``: ``"all"``
    (every partial pair present; ``total`` is never used) or an explicit list of pair names.
    Curves whose pair involves a species absent from the glass are dropped. ``r_max`` crops the
    common grid (g -> 1 beyond a few coordination shells carries little information).
    ``smoothing_A`` > 0 convolves every replica's g(r) with a Gaussian of that width (Angstrom)
    before averaging: histogram noise of small cells is then not a target to learn.
    """
    if basis not in PREFIX:
        raise ValueError(f"pcf.basis: {basis!r}; expected one of {list(PREFIX)}")
    if not systems:
        raise ValueError("pcf.systems: no systems given for the PCF family")
    frames, comp_frames, r_ref, r_src = [], [], None, None
    for name, rdf_path, comp_path in systems:
        rdf, comps = load_system(rdf_path, comp_path, name, basis)
        rdf = rdf[rdf["pair"] != "total"].assign(r_A=lambda d: d["r_A"].round(6))
        if r_max is not None:
            rdf = rdf[rdf["r_A"] <= float(r_max) + 1e-9]
        if pairs != "all":
            unknown = sorted(set(pairs) - set(rdf["pair"]))
            if unknown and len(systems) == 1:
                raise ValueError(f"{rdf_path}: pcf.pairs {unknown} not found (present: "
                                 f"{sorted(rdf['pair'].unique())})")
            rdf = rdf[rdf["pair"].isin(list(pairs))]
        r = np.sort(rdf["r_A"].unique())
        if r_ref is None:
            r_ref, r_src = r, rdf_path
        elif r.shape != r_ref.shape or not np.allclose(r, r_ref, atol=1e-6):
            raise ValueError(f"{rdf_path}: r-grid ({len(r)} points, {r[0]:.3f}-{r[-1]:.3f} A) "
                             f"differs from {r_src} ({len(r_ref)} points); expected one common "
                             "analysis grid")
        rdf = rdf.assign(system=name)
        frames.append(rdf)
        comp_frames.append(comps)
    if r_ref is None or not len(r_ref):
        raise ValueError("pcf: the family's rdf tables hold no partial-pair rows")
    rdf = pd.concat(frames, ignore_index=True)
    comps = pd.concat(comp_frames, ignore_index=True).fillna(0.0)
    components = sorted(c[len("frac_"):] for c in comps.columns if c.startswith("frac_"))

    # (system, composition, pair, replica) x r
    wide = rdf.pivot_table(index=["system", "composition_index", "pair", "replica"], columns="r_A",
                           values="g", aggfunc="mean")
    wide = wide.reindex(columns=r_ref).dropna(how="any")
    if smoothing_A:
        from vitriflow.surrogates.pcf.evaluate import smooth

        wide = pd.DataFrame(smooth(r_ref, wide.to_numpy(), smoothing_A), index=wide.index,
                            columns=wide.columns)
    grouped = wide.groupby(level=["system", "composition_index", "pair"], sort=True)
    mean, std, count = grouped.mean(), grouped.std(ddof=0), grouped.size()
    meta = mean.index.to_frame(index=False)
    meta["n_replicas"] = count.to_numpy()
    meta = meta.merge(comps, on=["system", "composition_index"], how="left", validate="many_to_one")
    if meta["label"].isna().any():
        bad = meta[meta["label"].isna()].iloc[0]
        raise ValueError(f"pcf: system {bad['system']} composition_index "
                         f"{bad['composition_index']} has RDFs but no row in compositions.parquet")
    # drop pairs whose species are absent from the glass (their g(r) is undefined)
    from vitriflow.surrogates.pcf.fingerprint import element_fractions

    keep, keys = [], []
    for _, row in meta.iterrows():
        fr = {c: row[f"frac_{c}"] for c in components if row[f"frac_{c}"] > 0}
        x = element_fractions(fr) if basis == "oxide" else fr
        a, b = split_pair(row["pair"])
        keep.append(x.get(a, 0) > 0 and x.get(b, 0) > 0)
        keys.append(_composition_key(fr))
    meta["group"] = keys
    keep = np.asarray(keep, dtype=bool)
    meta = meta[keep].reset_index(drop=True)
    y, y_std = mean.to_numpy()[keep], std.to_numpy()[keep]
    cols = ["system", "composition_index", "label", "pair", "group", "n_replicas"]
    meta = meta[cols + [f"frac_{c}" for c in components]]
    return PCFDataset(np.asarray(r_ref, dtype=float), y, np.nan_to_num(y_std), meta, components)
