"""Elastic tensors of relaxed glasses, batched over a system's structures on torch-sim.

``torch_sim.elastic.calculate_elastic_tensor`` takes the stresses of homogeneously strained
copies of a cell *without* relaxing the atoms (clamped-ion constants). That suits a crystal
whose atoms sit on symmetry sites, but in a glass (and in alpha-quartz) the atoms relax
non-affinely under strain, and the clamped-ion moduli of a silica glass come out about four
times too stiff. So the tensor here is the relaxed-ion one, built from torch-sim's own parts:

1. every structure is relaxed: with ``relax_cell`` first cell and atoms together (Frechet
   filter) to ``cell_fmax_eV_A`` (the MD's final relaxation leaves the glass at its 300 K
   volume, ~1 GPa from zero pressure at 0 K), then the atoms at fixed cell to ``fmax_eV_A``:
   the reference;
2. ``torch_sim.elastic.get_elementary_deformations`` strains each reference along the six
   Voigt axes (``n_deform`` strains from ``-max_strain`` to ``+max_strain``, zero left out);
3. the atoms of all strained cells of all structures are relaxed at their fixed strained cells
   in one batch (torch-sim's optimiser, converged systems leave the batch);
4. ``torch_sim.elastic.get_elastic_coeffs`` fits the 21 triclinic constants to the stresses
   (least squares; its hydrostatic pre-stress correction uses the reference pressure, which is
   ~0 for a relaxed glass) and ``get_elastic_tensor_from_coeffs`` gives the 6x6 Voigt tensor.

Bulk, shear and Young's moduli and Poisson's ratio are Voigt-Reuss-Hill averages from pymatgen's
``ElasticTensor``. A structure whose model call raises, whose stress is not finite, whose
relaxation does not converge, whose response is not linear (a plastic rearrangement under the
strain: ``max_strain_asymmetry``), or whose tensor is not positive definite fails alone with
that reason; the rest of the batch goes on.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from ase import Atoms

log = logging.getLogger("vitriflow.properties")

EV_A3_TO_GPA = 160.21766208
VOIGT = ("xx", "yy", "zz", "yz", "xz", "xy")
#: flat per-structure columns besides the 21 C_ij (c11_GPa ... c66_GPa)
ELASTIC_COLUMNS = ("bulk_modulus_GPa", "shear_modulus_GPa", "youngs_modulus_GPa",
                   "poisson_ratio", "bulk_modulus_voigt_GPa", "bulk_modulus_reuss_GPa",
                   "shear_modulus_voigt_GPa", "shear_modulus_reuss_GPa", "universal_anisotropy",
                   "min_eigenvalue_GPa", "reference_pressure_GPa", "strain_asymmetry",
                   "max_force_eV_A", "elastic_density_g_cm3")
#: long-table property name (as in ``vitriflow.properties.experiment``) -> (column, unit)
LONG_PROPERTIES = {"bulk_modulus": ("bulk_modulus_GPa", "GPa"),
                   "shear_modulus": ("shear_modulus_GPa", "GPa"),
                   "elastic_modulus": ("youngs_modulus_GPa", "GPa"),
                   "poisson_ratio": ("poisson_ratio", "1")}
_ID_KEYS = ("structure_id", "system", "label", "formula", "composition_index", "replica",
            "potential")


def cij_columns() -> list[str]:
    """Names of the 21 independent constants, ``c11_GPa`` ... ``c66_GPa``."""
    return [f"c{i + 1}{j + 1}_GPa" for i in range(6) for j in range(i, 6)]


# ----------------------------------------------------------------------------- torch-sim steps
def _relax(state, model, cfg: Mapping[str, Any], cell: bool = False):
    """Relax ``state`` (all systems as one batch); converged systems leave the batch."""
    import torch_sim as ts

    if hasattr(model, "reset_cache"):  # a fresh neighbour list: same arithmetic on every call
        model.reset_cache()
    init = {"cell_filter": ts.CellFilter.frechet} if cell else None
    return ts.optimize(
        system=state, model=model, optimizer=ts.Optimizer[cfg["optimizer"]],
        convergence_fn=ts.generate_force_convergence_fn(force_tol=cfg["fmax_eV_A"],
                                                        include_cell_forces=cell),
        max_steps=cfg["max_steps"], init_kwargs=init)


def _evaluate(state, model) -> tuple[np.ndarray, np.ndarray]:
    """(stress (n, 3, 3) eV/Å^3, largest atomic force per system eV/Å)."""
    import torch

    out = model(state)
    forces = out["forces"].detach()
    norms = torch.linalg.norm(forces, dim=1)
    fmax = torch.zeros(state.n_systems, dtype=norms.dtype, device=norms.device)
    fmax = fmax.scatter_reduce(0, state.system_idx, norms, reduce="amax")
    return out["stress"].detach().cpu().numpy(), fmax.cpu().numpy()


def _plain_state(atoms: Atoms, model):
    import torch
    import torch_sim as ts

    return ts.io.atoms_to_state(atoms, device=torch.device(model.device), dtype=model.dtype)


def _tensors(group: Sequence[Atoms], model, cfg: Mapping[str, Any]) -> list[dict]:
    """Relaxed-ion tensors of ``group`` in one batch (raises if the model raises)."""
    import torch
    import torch_sim as ts
    from torch_sim import elastic as tse

    state = ts.io.atoms_to_state(list(group), device=torch.device(model.device),
                                 dtype=model.dtype)
    if cfg["relax_cell"]:  # cell and atoms to a looser tolerance, then the atoms tightly
        loose = dict(cfg, fmax_eV_A=cfg["cell_fmax_eV_A"])
        state = ts.io.atoms_to_state(_relax(state, model, loose, cell=True).to_atoms(),
                                     device=torch.device(model.device), dtype=model.dtype)
    ref = _relax(state, model, cfg)
    ref_stress, ref_fmax = _evaluate(ref, model)
    ref_atoms = ref.to_atoms()
    deformations, owner = [], []
    for i, a in enumerate(ref_atoms):
        d = tse.get_elementary_deformations(
            _plain_state(a, model), n_deform=cfg["n_deform"], max_strain_normal=cfg["max_strain"],
            max_strain_shear=cfg["max_strain"], bravais_type=tse.BravaisType.TRICLINIC)
        deformations.extend(d)
        owner.extend([i] * len(d))
    relaxed = _relax(ts.concatenate_states(deformations), model, cfg)
    stress, fmax = _evaluate(relaxed, model)
    owner = np.asarray(owner)
    out = []
    for i, a in enumerate(ref_atoms):
        idx = np.flatnonzero(owner == i)
        out.append(_fit(a, [deformations[k] for k in idx], stress[idx], ref_stress[i],
                        max(ref_fmax[i], fmax[idx].max()), cfg, model))
    return out


def _fit(ref: Atoms, deformations, stress: np.ndarray, ref_stress: np.ndarray, fmax: float,
         cfg: Mapping[str, Any], model) -> dict:
    """One structure's tensor and moduli from its strained cells' stresses, or its failure."""
    import torch
    from torch_sim import elastic as tse

    from vitriflow.structures.packing import density_g_cm3

    row: dict[str, Any] = {"max_force_eV_A": float(fmax),
                           "elastic_density_g_cm3": round(density_g_cm3(ref), 5)}
    if not (np.all(np.isfinite(stress)) and np.all(np.isfinite(ref_stress))):
        return {**row, "status": "failed", "reason": "non-finite stress under strain"}
    if not fmax <= cfg["fmax_eV_A"]:
        return {**row, "status": "failed",
                "reason": f"relaxation did not converge: max force {fmax:.3g} eV/Å > "
                          f"{cfg['fmax_eV_A']:g} after {cfg['max_steps']} steps"}
    dtype = model.dtype
    voigt = tse.full_3x3_to_voigt_6_stress(torch.as_tensor(stress, dtype=dtype))
    p_ref = -float(np.trace(ref_stress)) / 3
    coeffs, _ = tse.get_elastic_coeffs(_plain_state(ref, model), deformations,
                                       voigt.to(model.device), torch.tensor(p_ref, dtype=dtype),
                                       tse.BravaisType.TRICLINIC)
    c = tse.get_elastic_tensor_from_coeffs(coeffs, tse.BravaisType.TRICLINIC)
    c = c.detach().cpu().numpy() * EV_A3_TO_GPA
    row.update(reference_pressure_GPa=p_ref * EV_A3_TO_GPA,
               strain_asymmetry=_asymmetry(voigt.numpy(), ref_stress))
    row.update(dict(zip(cij_columns(), c[np.triu_indices(6)].tolist(), strict=True)))
    if not np.all(np.isfinite(c)):
        return {**row, "status": "failed", "reason": "non-finite elastic tensor"}
    eig = float(np.linalg.eigvalsh(0.5 * (c + c.T)).min())
    row["min_eigenvalue_GPa"] = eig
    if row["strain_asymmetry"] > cfg["max_strain_asymmetry"]:
        return {**row, "status": "failed",
                "reason": f"stress not linear in strain (asymmetry {row['strain_asymmetry']:.2f} > "
                          f"{cfg['max_strain_asymmetry']:g}): a plastic rearrangement; try a "
                          "smaller max_strain"}
    if eig <= 0:
        return {**row, "status": "failed",
                "reason": f"elastic tensor not positive definite (eigenvalue {eig:.3g} GPa)"}
    row.update(moduli(c))
    return {**row, "status": "ok", "reason": ""}


def _asymmetry(voigt: np.ndarray, ref_stress: np.ndarray) -> float:
    """max |s(+e) + s(-e) - 2 s0| / max |s(+e) - s(-e)| over the strain pairs: ~0 for a linear
    response, O(1) when a strained cell relaxed into another minimum. NaN without pairs."""
    n = len(voigt) // 6
    if n % 2:
        return float("nan")
    s0 = np.array([ref_stress[0, 0], ref_stress[1, 1], ref_stress[2, 2], ref_stress[2, 1],
                   ref_stress[2, 0], ref_stress[1, 0]])
    per_axis = voigt.reshape(6, n, 6)  # axis, strain (ascending), component
    plus, minus = per_axis[:, ::-1][:, : n // 2], per_axis[:, : n // 2]
    curvature = np.abs(plus + minus - 2 * s0).max()
    slope = np.abs(plus - minus).max()
    return float(curvature / slope) if slope > 0 else float("nan")


def moduli(c_voigt_gpa: np.ndarray) -> dict[str, float]:
    """Voigt, Reuss and Voigt-Reuss-Hill moduli (GPa), Poisson's ratio and the universal
    anisotropy index of a 6x6 Voigt tensor in GPa (pymatgen ``ElasticTensor``)."""
    from pymatgen.analysis.elasticity import ElasticTensor

    et = ElasticTensor.from_voigt(np.asarray(c_voigt_gpa, dtype=float))
    k, g = float(et.k_vrh), float(et.g_vrh)
    return {"bulk_modulus_GPa": k, "shear_modulus_GPa": g,
            "youngs_modulus_GPa": 9 * k * g / (3 * k + g),
            "poisson_ratio": float(et.homogeneous_poisson),
            "bulk_modulus_voigt_GPa": float(et.k_voigt),
            "bulk_modulus_reuss_GPa": float(et.k_reuss),
            "shear_modulus_voigt_GPa": float(et.g_voigt),
            "shear_modulus_reuss_GPa": float(et.g_reuss),
            "universal_anisotropy": float(et.universal_anisotropy)}


# ----------------------------------------------------------------------------- public API
def elastic_properties(structures: Sequence[Atoms], model, cfg: Mapping[str, Any]) -> list[dict]:
    """One flat row per structure: ids from its info, ``status``/``reason``, the 21 constants
    (``cij_columns``) and ``ELASTIC_COLUMNS``.

    ``cfg`` is the ``properties.elastic`` section: ``max_strain``, ``n_deform``, ``fmax_eV_A``,
    ``max_steps``, ``optimizer`` (``lbfgs``/``fire``/``bfgs``), ``relax_cell``,
    ``cell_fmax_eV_A`` and ``max_strain_asymmetry``. Structures marked failed upstream (info
    ``status``) pass through failed; if the batch raises, each structure is redone alone so only
    the culprit fails.
    """
    if cfg["n_deform"] < 2:
        raise ValueError(f"properties.elastic.n_deform: {cfg['n_deform']}; expected at least 2 "
                         "strains per axis")
    rows = [{k: a.info[k] for k in _ID_KEYS if k in a.info} for a in structures]
    todo = [i for i, a in enumerate(structures) if a.info.get("status", "ok") == "ok"]
    for i, a in enumerate(structures):
        if i not in todo:
            rows[i].update(status="failed", reason=a.info.get("reason", "") or "failed upstream")
    for i, result in zip(todo, _guarded([structures[i] for i in todo], model, cfg), strict=True):
        rows[i].update(result)
        if result["status"] != "ok":
            log.warning("%s: elastic tensor failed: %s", rows[i].get("structure_id", i),
                        result["reason"])
    return rows


def _guarded(group: Sequence[Atoms], model, cfg: Mapping[str, Any]) -> list[dict]:
    if not group:
        return []
    try:
        return _tensors(group, model, cfg)
    except Exception as exc:  # the model or the optimiser raised: find the culprit
        if len(group) == 1:
            msg = " ".join(f"{type(exc).__name__}: {exc}".split())[:200]
            return [{"status": "failed", "reason": f"model error: {msg}"}]
        log.warning("elastic batch of %d structures failed (%s); redoing each alone", len(group),
                    type(exc).__name__)
        return [r for a in group for r in _guarded([a], model, cfg)]


def long_table(rows: Sequence[Mapping[str, Any]], properties: Mapping = LONG_PROPERTIES
               ) -> pd.DataFrame:
    """Long rows (ids, property, value, unit) of the structures that succeeded: what
    ``experiment.parity_table`` takes once a ``composition`` and ``potential`` column are set."""
    out = []
    for r in rows:
        if r.get("status") != "ok":
            continue
        ids = {k: r[k] for k in _ID_KEYS if k in r}
        for prop, (col, unit) in properties.items():
            out.append({**ids, "property": prop, "value": float(r[col]), "unit": unit})
    return pd.DataFrame(out)


def replica_summary(rows: Sequence[Mapping[str, Any]] | pd.DataFrame,
                    columns: Sequence[str] = tuple(c for c, _ in LONG_PROPERTIES.values()),
                    by: Sequence[str] = ("system", "composition_index", "label")) -> pd.DataFrame:
    """Mean, sample std (ddof=1; NaN for one replica) and count of ``columns`` over the replicas
    that succeeded, per composition (``by``)."""
    df = pd.DataFrame(rows)
    by = [b for b in by if b in df.columns]
    if df.empty or not by:
        return pd.DataFrame()
    ok = df[df["status"] == "ok"] if "status" in df else df
    cols = [c for c in columns if c in df.columns]
    g = ok.groupby(by, sort=True)[cols]
    out = g.mean().add_suffix("_mean").join(g.std(ddof=1).add_suffix("_std"))
    out["n_ok"] = g.size()
    out = out.reindex(df.groupby(by, sort=True).size().index)
    out["n_ok"] = out["n_ok"].fillna(0).astype(int)
    return out.reset_index()
