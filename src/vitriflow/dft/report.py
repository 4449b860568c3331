"""The DFT report fragment (``results/report/sections/50_dft.html``)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import pandas as pd

from vitriflow.dft.compare import error_table, figures, settings_rows
from vitriflow.report import figure_html, headline, note_html, table_html, write_section

TITLE = "DFT comparison of MLIP energies"


def write_skipped(path: str | os.PathLike, reason: str) -> None:
    """Fragment for a stage that could not run (e.g. GPAW not importable)."""
    write_section(path, TITLE, note_html(f"DFT comparison skipped: {reason}", "bad"),
                  headlines=[headline("DFT comparison", "skipped", reason, "bad")])


def write_dft_section(
    path: str | os.PathLike,
    df: pd.DataFrame,
    summary: Mapping,
    settings: Mapping,
    precision: str,
    warnings: Sequence[str] = (),
    convergence: pd.DataFrame | None = None,
) -> None:
    """Tables, figures, settings, precision statement and the list of failed DFT jobs."""
    include_total = bool(summary.get("total_energies_comparable"))
    parts = [
        note_html(
            f"{summary['n_amorphous']} amorphous structures, {summary['n_crystal']} crystal and "
            f"{summary['n_element']} elemental references; DFT finished for {summary['n_dft_ok']} "
            f"of {summary['n_structures']}, {summary['n_dft_failed']} failed or missing (listed "
            "below, kept in the tables). Errors are MLIP − DFT on identical geometries (single "
            f"points). Aykol et al. report an overall MAE of {summary['paper_mae_overall_meV']} "
            "meV/atom against relaxed MP-compatible VASP energies of ~10,000 structures."),
        note_html(precision),
    ]
    if not include_total:
        parts.append(note_html(
            "Total energies per atom are not compared: this DFT backend's total energies have a "
            "different zero from the MLIP's (trained on VASP/MP). Compared instead: ΔE_am (each "
            "method against its own crystals at the same composition) and formation energies on "
            "chemical potentials fitted, for each method, so that its formation energies of the "
            "run's crystals and elemental phases match the Materials Project's. Formation energies "
            "against each method's elemental phases alone (an O2 molecule in a box for DFT) are "
            "listed too, but their error mostly measures the O2 reference, not the amorphous "
            "structures."))
    errors = error_table(df, include_total)
    parts.append(table_html(errors, "Errors of the amorphous structures by chemistry class "
                                    "(meV/atom; Table 1 classes)."))
    aff = summary.get("affine_e_form", {})
    if "slope" in aff:
        parts.append(note_html(
            f"Affine correction of formation energies, E_DFT ≈ {aff['slope']:.3f} E_MLIP "
            f"+ {aff['intercept_eV']:.3f} eV: MAE {aff['mae_raw_meV']:.1f} meV/atom raw, "
            f"{aff['cv_mae_corrected_meV']:.1f} meV/atom corrected ({aff['folds']}-fold "
            f"cross-validated, n = {aff['n']})."))
    else:
        parts.append(note_html(f"Affine correction not fitted: {aff.get('reason', 'no data')}."))
    for fig, cap in figures(df, include_total):
        parts.append(figure_html(fig, cap))
    cols = ["structure_id", "role", "formula", "chemistry", "n_atoms", "mlip_e_total",
            "dft_e_total", "mlip_de_am", "dft_de_am", "mlip_e_form", "dft_e_form", "mlip_e_form_el",
            "dft_e_form_el", "dft_status"]
    parts.append(table_html(df[[c for c in cols if c in df]], "Per-structure energies (eV/atom)."))
    failed = df[df["dft_status"] != "ok"]
    if len(failed):
        parts.append(note_html(f"{len(failed)} DFT job(s) failed or are missing:", "bad"))
        parts.append(table_html(failed[["structure_id", "role", "n_atoms", "dft_status",
                                        "dft_reason"]]))
    mfail = df[df["mlip_status"] != "ok"]
    if len(mfail):
        parts.append(note_html(f"{len(mfail)} MLIP single point(s) failed: "
                               f"{mfail['mlip_reason'].iloc[0]}", "bad"))
    for w in warnings:
        parts.append(note_html(w))
    parts.append(table_html(settings_rows(settings), "DFT settings."))
    if convergence is not None and len(convergence):
        parts.append(table_html(convergence, "Convergence check (energies relative to the tightest "
                                             "settings, meV/atom)."))
    write_section(path, TITLE, *parts, headlines=dft_headlines(errors, summary))


def dft_headlines(errors: pd.DataFrame, summary: Mapping) -> list[dict[str, str]]:
    """Cards: ΔE_am first (E_amorphous - E_crystal: no elemental reference needed), then the
    formation energy on fitted chemical potentials, each with the DFT settings; failed jobs."""
    cards = []
    overall = errors[errors["chemistry"] == "overall"]
    settings = summary.get("settings_brief", "")
    paper = summary["paper_mae_overall_meV"]
    for column, label, how in (
        ("MAE ΔE_am", "MLIP − DFT ΔE_am",
         "E(amorphous) − E(crystal) at the same composition, reference-free"),
        ("MAE formation energy", "MLIP − DFT formation energy",
         "on chemical potentials fitted per method to the run's crystals (MP formation energies)"),
    ):
        mae = float(overall[column].iloc[0]) if len(overall) and column in overall else float("nan")
        if mae == mae:
            cards.append(headline(label, f"MAE {mae:.0f} meV/atom",
                                  f"{int(overall['n'].iloc[0])} amorphous structures, "
                                  f"{how}; {settings}; single points on identical "
                                  f"geometries (Aykol et al.: {paper} meV/atom on "
                                  "formation energies vs relaxed VASP)"))
    if summary["n_dft_failed"]:
        cards.append(headline("DFT jobs",
                              f"{summary['n_dft_failed']} of {summary['n_structures']} failed",
                              "listed in the DFT section", "bad"))
    return cards
