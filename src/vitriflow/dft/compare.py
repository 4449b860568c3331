"""MLIP vs DFT: total, formation and amorphous-above-crystal energies, error tables, affine fix.

For each method m (``mlip``, ``dft``) and system, separately:
- element chemical potentials mu_m(El) fitted (least squares) so that the method's formation
  energies of the run's crystals and solid elemental phases reproduce the Materials Project's
  formation energies of the same phases (molecules in a box only where needed); formation
  energy per atom
  E_f = (E - sum_El n_El mu_m(El)) / N. A method's elemental phases alone are not a consistent
  zero: GPAW's O2 molecule in a box and an MLIP trained on MP2020-corrected energies differ by
  ~0.2 eV/atom of O, which would swamp the errors on the amorphous cells. E_f against the
  elemental phases alone is kept as ``e_form_el`` for reference;
- hull energy per atom at the composition from a pymatgen ``PhaseDiagram`` of the method's
  element and crystal energies, using only phases that *both* methods computed, so the two hulls
  are built from the same phases; ΔE_am = E/N - E_hull/N (energy of the amorphous structure above
  the crystalline ground state at its composition, the "amorphous limit" quantity).
Errors are MLIP - DFT. Total energies per atom are compared only when the DFT backend lives on
the MLIP's energy scale (VASP with MP settings, or a user table that says so): GPAW's PAW total
energies have another zero, so for GPAW only E_f and ΔE_am errors are meaningful.
Non-converged or failed DFT rows stay in the table with their status and reason.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import numpy as np
import pandas as pd

from vitriflow.dft.chemistry import PAPER_MAE_MEV, classify

METHODS = ("mlip", "dft")
QUANTITIES = {"e_total": "E/atom", "de_am": "ΔE_am", "e_form": "formation energy",
              "e_form_el": "formation energy (elemental phases)"}


def _counts(row) -> dict[str, int]:
    c = row["composition"]
    return json.loads(c) if isinstance(c, str) else dict(c)


def merge_energies(selection: pd.DataFrame, mlip: pd.DataFrame, dft: pd.DataFrame) -> pd.DataFrame:
    """One row per selected structure with ``mlip_*`` and ``dft_*`` energy/status columns."""
    base = selection.copy()
    base["structure_id"] = base["structure_id"].astype(str)
    for name, tab in (("mlip", mlip), ("dft", dft)):
        t = tab.copy()
        t["structure_id"] = t["structure_id"].astype(str)
        unknown = sorted(set(t["structure_id"]) - set(base["structure_id"]))
        if unknown:
            raise ValueError(f"{name} energies: structure_id {unknown[0]!r} is not in the "
                             "selection")
        cols = {"energy_eV": f"{name}_energy_eV", "status": f"{name}_status",
                "reason": f"{name}_reason"}
        t = t[[c for c in ["structure_id", *cols] if c in t.columns]].rename(columns=cols)
        base = base.merge(t, on="structure_id", how="left")
        base[f"{name}_status"] = base[f"{name}_status"].fillna("missing")
        if f"{name}_reason" not in base:
            base[f"{name}_reason"] = ""
        base[f"{name}_reason"] = base[f"{name}_reason"].fillna("").astype(str)
        bad = base[f"{name}_status"] != "ok"
        base.loc[bad, f"{name}_energy_eV"] = np.nan
        base[f"{name}_e_total"] = base[f"{name}_energy_eV"] / base["n_atoms"]
    return base


def _phase_diagram_energy(entries: list[tuple[dict, float]], comp: dict) -> float:
    from pymatgen.analysis.phase_diagram import PDEntry, PhaseDiagram
    from pymatgen.core import Composition

    pd_entries = [PDEntry(Composition(c), e) for c, e in entries]
    els = {el for c, _ in entries for el in c}
    if not set(comp) <= els:
        return np.nan
    diagram = PhaseDiagram(pd_entries)
    return float(diagram.get_hull_energy_per_atom(Composition(comp)))


def fitted_chemical_potentials(refs: pd.DataFrame, method: str) -> dict[str, float]:
    """mu(El) (eV/atom) of ``method`` fitted (least squares) so that its formation energies of
    the reference phases match their ``reference_formation_energy_per_atom_eV`` (the Materials
    Project's; 0 for elements): the run's crystals and solid elemental phases. Molecules in a box
    (O2, N2, ...) enter only when the others cannot fix every element's potential: their DFT
    energies carry the errors that MP's anion corrections exist for. {} when the phases cannot
    determine every potential."""
    ok = refs[np.isfinite(refs[f"{method}_e_total"])
              & np.isfinite(refs["reference_formation_energy_per_atom_eV"])]
    if ok.empty:
        return {}
    elements = sorted({el for _, r in ok.iterrows() for el in _counts(r)})
    molecule = (ok["source_id"].astype(str).str.startswith("molecule:") if "source_id" in ok
                else False)
    for rows in (ok[~molecule], ok):
        counts = [_counts(r) for _, r in rows.iterrows()]
        A = np.array([[c.get(el, 0) / sum(c.values()) for el in elements]
                      for c in counts]).reshape(-1, len(elements))
        if len(counts) and np.linalg.matrix_rank(A) == len(elements):
            b = (rows[f"{method}_e_total"].to_numpy()
                 - rows["reference_formation_energy_per_atom_eV"].to_numpy())
            mu, *_ = np.linalg.lstsq(A, b, rcond=None)
            return dict(zip(elements, mu.tolist(), strict=True))
    return {}


def compute_energies(merged: pd.DataFrame) -> pd.DataFrame:
    """Add ``{m}_e_form`` (fitted chemical potentials), ``{m}_e_form_el`` (elemental phases),
    ``{m}_de_am``, errors ``err_*`` (meV/atom) and ``chemistry``."""
    df = merged.copy()
    if "reference_formation_energy_per_atom_eV" not in df:
        df["reference_formation_energy_per_atom_eV"] = np.nan
    df["chemistry"] = [classify(_counts(r)) for _, r in df.iterrows()]
    for m in METHODS:
        for q in ("e_form", "e_form_el", "de_am"):
            df[f"{m}_{q}"] = np.nan
    df["hull_phases"] = 0
    df["note"] = ""
    for _system, g in df.groupby("system", sort=True):
        elem = g[g["role"] == "element"]
        mu_el: dict[str, dict[str, float]] = {m: {} for m in METHODS}
        for _, r in elem.iterrows():
            (el,) = _counts(r).keys()
            for m in METHODS:
                if np.isfinite(r[f"{m}_e_total"]):
                    mu_el[m][el] = float(r[f"{m}_e_total"])
        refs = g[g["role"].isin(["element", "crystal"])]
        mu_fit = {m: fitted_chemical_potentials(refs, m) for m in METHODS}
        # hull phases: elements + crystals computed by both methods
        both = refs[refs["mlip_e_total"].notna() & refs["dft_e_total"].notna()]
        for idx, r in g.iterrows():
            counts = _counts(r)
            n = sum(counts.values())
            notes = []
            for m in METHODS:
                e = r[f"{m}_e_total"]
                if not np.isfinite(e):
                    continue
                for q, mu in (("e_form", mu_fit[m]), ("e_form_el", mu_el[m])):
                    missing = [el for el in counts if el not in mu]
                    if missing:
                        what = ("fitted chemical potential" if q == "e_form"
                                else "elemental reference")
                        notes.append(f"{m}: no {what} for {','.join(missing)}")
                        continue
                    df.at[idx, f"{m}_{q}"] = e - sum(c * mu[el] for el, c in counts.items()) / n
                if r["role"] == "element":
                    continue
                entries = [(_counts(p), float(p[f"{m}_energy_eV"])) for _, p in both.iterrows()]
                if not entries:
                    continue
                hull = _phase_diagram_energy(entries, counts)
                if np.isfinite(hull):
                    df.at[idx, f"{m}_de_am"] = e - hull
                else:
                    notes.append(f"{m}: hull lacks an element")
            df.at[idx, "hull_phases"] = int((both["role"] == "crystal").sum())
            df.at[idx, "note"] = "; ".join(dict.fromkeys(notes))
    for q in QUANTITIES:
        df[f"err_{q}_meV"] = 1000.0 * (df[f"mlip_{q}"] - df[f"dft_{q}"])
    return df


def error_table(df: pd.DataFrame, include_total: bool) -> pd.DataFrame:
    """MAE / mean signed error / RMSE (meV/atom) of the amorphous structures by chemistry class."""
    am = df[(df["role"] == "amorphous")]
    qs = [q for q in QUANTITIES if include_total or q != "e_total"]
    rows = []
    for cls, g in [*sorted(am.groupby("chemistry")), ("overall", am)]:
        row = {"chemistry": cls, "n": int(g["dft_e_total"].notna().sum())}
        for q in qs:
            e = g[f"err_{q}_meV"].dropna()
            row[f"MAE {QUANTITIES[q]}"] = float(e.abs().mean()) if len(e) else np.nan
            row[f"ME {QUANTITIES[q]}"] = float(e.mean()) if len(e) else np.nan
            row[f"RMSE {QUANTITIES[q]}"] = float(np.sqrt((e**2).mean())) if len(e) else np.nan
        row["paper MAE (Table 1)"] = PAPER_MAE_MEV.get(cls, np.nan)
        rows.append(row)
    return pd.DataFrame(rows)


def affine_correction(x_mlip: np.ndarray, y_dft: np.ndarray, seed: int = 0,
                      max_folds: int = 5) -> dict:
    """Fit y = a x + b (energies per atom, eV); cross-validated MAE (meV/atom) before and after."""
    from sklearn.linear_model import LinearRegression
    from sklearn.model_selection import KFold, cross_val_predict

    x = np.asarray(x_mlip, float)
    y = np.asarray(y_dft, float)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    out: dict = {"n": int(len(x)),
                 "mae_raw_meV": float(1000 * np.abs(x - y).mean()) if len(x) else np.nan}
    if len(x) < 4:
        out["reason"] = f"affine correction needs >= 4 structures with both energies, have {len(x)}"
        return out
    model = LinearRegression().fit(x[:, None], y)
    folds = min(max_folds, len(x))
    cv = KFold(n_splits=folds, shuffle=True, random_state=seed)
    pred = cross_val_predict(LinearRegression(), x[:, None], y, cv=cv)
    out.update({"slope": float(model.coef_[0]), "intercept_eV": float(model.intercept_),
                "folds": folds, "cv_mae_corrected_meV": float(1000 * np.abs(pred - y).mean()),
                "fit_mae_corrected_meV":
                    float(1000 * np.abs(model.predict(x[:, None]) - y).mean())})
    return out


def summarize(df: pd.DataFrame, include_total: bool, seed: int = 0) -> dict:
    """Counts, overall MAEs and the affine correction on formation energies of amorphous rows."""
    am = df[df["role"] == "amorphous"]
    failed = df[df["dft_status"] != "ok"]
    s: dict = {
        "n_structures": int(len(df)), "n_amorphous": int(len(am)),
        "n_crystal": int((df["role"] == "crystal").sum()),
        "n_element": int((df["role"] == "element").sum()),
        "n_dft_ok": int((df["dft_status"] == "ok").sum()), "n_dft_failed": int(len(failed)),
        "failed_ids": failed["structure_id"].tolist(),
        "total_energies_comparable": bool(include_total),
    }
    for q in QUANTITIES:
        if q == "e_total" and not include_total:
            continue
        e = am[f"err_{q}_meV"].dropna()
        s[f"mae_{q}_meV"] = float(e.abs().mean()) if len(e) else None
        s[f"me_{q}_meV"] = float(e.mean()) if len(e) else None
        s[f"n_{q}"] = int(len(e))
    s["affine_e_form"] = affine_correction(am["mlip_e_form"].to_numpy(),
                                           am["dft_e_form"].to_numpy(), seed=seed)
    if include_total:
        s["affine_e_total"] = affine_correction(am["mlip_e_total"].to_numpy(),
                                                am["dft_e_total"].to_numpy(), seed=seed)
    s["paper_mae_overall_meV"] = PAPER_MAE_MEV["overall"]
    return s


def figures(df: pd.DataFrame, include_total: bool):
    """Matplotlib figures: error histogram (cf. Fig. 4 of Aykol et al.) and parity plots."""
    from vitriflow.report import pyplot

    plt = pyplot()

    am = df[df["role"] == "amorphous"]
    figs = []
    q_hist = "e_total" if include_total else "de_am"
    err = am[f"err_{q_hist}_meV"].dropna()
    fig, ax = plt.subplots(figsize=(5, 3.4))
    if len(err):
        ax.hist(err, bins=max(5, min(40, len(err) // 2 + 1)), color="#3a6ea5", edgecolor="white")
        ax.axvline(0, color="k", lw=0.8)
        ax.axvline(err.mean(), color="#d93025", lw=1, ls="--", label=f"mean {err.mean():.0f}")
        ax.legend(frameon=False)
    ax.set_xlabel(f"MLIP − DFT {QUANTITIES[q_hist]} (meV/atom)")
    ax.set_ylabel("structures")
    figs.append((fig, f"Distribution of MLIP − DFT {QUANTITIES[q_hist]} over {len(err)} amorphous "
                      "structures (cf. Fig. 4 of Aykol et al.)."))
    qs = (["e_total"] if include_total else []) + ["de_am", "e_form"]
    fig, axes = plt.subplots(1, len(qs), figsize=(4 * len(qs), 3.6))
    for ax, q in zip(np.atleast_1d(axes), qs, strict=True):
        for role, mk in (("amorphous", "o"), ("crystal", "s"), ("element", "^")):
            g = df[df["role"] == role]
            ax.scatter(g[f"dft_{q}"], g[f"mlip_{q}"], s=18, marker=mk, label=role, alpha=0.8)
        v = pd.concat([df[f"dft_{q}"], df[f"mlip_{q}"]]).dropna()
        if len(v):
            lo, hi = v.min(), v.max()
            pad = 0.05 * (hi - lo + 1e-3)
            ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], "k-", lw=0.7)
        ax.set_xlabel(f"DFT {QUANTITIES[q]} (eV/atom)")
        ax.set_ylabel(f"MLIP {QUANTITIES[q]} (eV/atom)")
    np.atleast_1d(axes)[0].legend(frameon=False, fontsize=8)
    fig.tight_layout()
    figs.append((fig, "Parity of MLIP and DFT energies per atom (line: y = x)."))
    return figs


def settings_rows(settings: Mapping) -> pd.DataFrame:
    """Settings mapping as a two-column key/value table for the report."""
    return pd.DataFrame({"setting": list(settings), "value": [str(v) for v in settings.values()]})
