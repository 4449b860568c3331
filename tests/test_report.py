"""Report assembly: headline cards travel from the sections into the "At a glance" panel."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from vitriflow.report import assemble, headline, section_headlines, write_section


def test_headline_cards_are_collected_in_report_order_and_link_to_their_sections(tmp_path):
    tricky = headline("Structures", "3 of 4 ok", "one </script> <b>exploded</b>", "bad")
    write_section(tmp_path / "00.html", "Run summary", "<p>a</p>", headlines=[tricky])
    write_section(tmp_path / "10.html", "No cards", "<p>b</p>")
    write_section(tmp_path / "20.html", "Viscosity", "<p>c</p>",
                  headlines=[headline("RMSE", "0.32", kind="good"), headline("Targets", "7 of 14")])
    assert section_headlines((tmp_path / "00.html").read_text()) == [tricky]
    assemble([tmp_path / f"{k}.html" for k in ("00", "10", "20")], tmp_path / "index.html", "t")
    page = (tmp_path / "index.html").read_text()
    main = page[page.index("<main>"):]
    assert main.index('id="at-a-glance"') < main.index('id="run-summary"')  # panel first
    cards = re.findall(r'<a class="card (\w+)" href="#([^"]+)">', page)
    assert cards == [("bad", "run-summary"), ("good", "viscosity"), ("neutral", "viscosity")]
    # shown escaped, never as markup
    assert "one &lt;/script&gt; &lt;b&gt;exploded&lt;/b&gt;" in page
    assert page.index('href="#at-a-glance"') < page.index('href="#run-summary"')

    assemble([tmp_path / "10.html"], tmp_path / "plain.html", "t")  # no cards, no panel
    assert "at-a-glance" not in (tmp_path / "plain.html").read_text()
    with pytest.raises(ValueError, match="headline kind"):
        headline("x", "1", kind="great")


def test_stage_cards_compare_with_their_baseline_or_target():
    from vitriflow.surrogates.dissolution import headline_card
    from vitriflow.surrogates.gnn.report import gnn_headline
    from vitriflow.surrogates.pcf.report import pcf_headline
    from vitriflow.surrogates.viscosity.report import melt_headlines

    cmp = pd.DataFrame({"target": ["viscosity:ag", "viscosity:fv", "tg", "sconf_tg"],
                        "vitriflow": [0.35, 0.33, 11.0, 0.9], "i-Melt": [0.38, 0.32, 12.0, np.nan]})
    best, count = melt_headlines(cmp, "full")
    # each model's best equation
    assert best["kind"] == "bad" and best["value"] == "0.330 vs 0.320 log₁₀ Pa s"
    assert "free volume / free volume" in best["detail"]
    # sconf: no i-Melt value
    assert count["value"] == "2 of 3" and "viscosity:ag, tg" in count["detail"]
    cmp.loc[1, "vitriflow"] = 0.31
    # a demo ensemble is never judged against i-Melt: the card shows the full preset beside it
    demo = melt_headlines(cmp, "demo")[0]
    assert (demo["kind"] == "neutral" and "demo ensemble" in demo["label"]
            and demo["value"].split(" / ")[1] == "0.316" and "full preset" in demo["detail"])
    alone = melt_headlines(cmp.drop(columns="i-Melt"), "full")
    assert (len(alone) == 1 and alone[0]["kind"] == "neutral"
            and "no i-Melt comparison" in alone[0]["detail"])

    metrics = pd.DataFrame({"model": ["gnn", "composition_ridge", "mean"], "unit": "eV/atom",
                            "rmse": [0.0211, 0.0227, 0.05], "n_structures": 113,
                            "within_composition_r": [0.56, np.nan, np.nan]})
    card = gnn_headline(metrics, "energy_per_atom_eV")
    assert card["kind"] == "good" and card["value"] == "21.1 vs 22.7 meV/atom"
    metrics.loc[0, "rmse"] = 0.03
    assert gnn_headline(metrics, "energy_per_atom_eV")["kind"] == "bad"

    pcf = pd.DataFrame({"model": ["pca", "pca", "ae"], "pair": ["all", "Si-O", "all"],
                        "r2": [0.96, 0.5, 0.80]})
    assert (pcf_headline(pcf, "pca", 4)["kind"] == "good"
            and pcf_headline(pcf, "ae", 4)["kind"] == "bad")

    summary = pd.DataFrame({"model": ["III", "V-ens"], "ph_measure": "initial",
                            "grouped_rrmse_pct": [6.08, 3.73], "grouped_rrmse_sd_pct": [1.76, 1.38],
                            "grouped_splits": 20})
    card = headline_card(summary, 3.76)
    assert (card["kind"] == "good" and "V-ens" in card["detail"]
            and card["value"] == "RRMSE 3.73 ± 1.38 %")
    assert headline_card(summary, 3.5)["kind"] == "bad"


def test_dft_cards_give_the_overall_error_and_flag_failed_jobs():
    from vitriflow.dft.report import dft_headlines

    errors = pd.DataFrame({"chemistry": ["oxide", "overall"], "n": [3, 5],
                           "MAE formation energy": [20.0, 31.4]})
    summary = {"paper_mae_overall_meV": 38, "n_dft_failed": 1, "n_structures": 9}
    mae, failed = dft_headlines(errors, summary)
    assert mae["value"] == "MAE 31 meV/atom" and "5 amorphous" in mae["detail"]
    assert failed["kind"] == "bad" and failed["value"] == "1 of 9 failed"
    assert len(dft_headlines(errors, {**summary, "n_dft_failed": 0})) == 1


def test_md_throughput_cards_skip_resumed_jobs():
    from vitriflow.md.report import _cost_row, md_headlines

    summ = pd.DataFrame({"n_atoms": [100, 100]})
    rows = [_cost_row("a", summ,
                      {"potential": "teter", "device": "cpu", "wall_s": 10.0, "atom_steps": 2e5}),
            _cost_row("b", summ,
                      {"potential": "teter", "device": "cpu", "wall_s": 30.0, "atom_steps": 2e5}),
            _cost_row("c", summ,
                      {"potential": "teter", "device": "cpu", "wall_s": 1.0, "atom_steps": 2e5,
                       "resumed": True}),
            # no timing recorded
            _cost_row("d", summ, {"potential": "sevennet-0", "device": "cpu"})]
    cost = pd.DataFrame(rows)
    assert (cost["atom-steps/s"].tolist()[:2] == [2e4, 2e5 / 30]
            and cost["atom-steps/s"].isna().tolist()[2:] == [True] * 2)
    (card,) = md_headlines(cost)
    # 4e5 / 40 s
    assert card["label"] == "MD throughput, teter" and card["value"] == "10,000 atom-steps/s"
    assert "2 system(s), 400 atoms" in card["detail"]


def test_summary_cards_flag_failed_structures_and_estimated_references():
    from vitriflow.structures.report import summary_headlines

    table = pd.DataFrame({"structures": [4, 2], "failed": [1, 0], "MD device": ["cuda", "cuda"],
                          "potential": ["sevennet-0", "teter"]})
    structures, refs = summary_headlines(table, {"snapshot", "estimate"})
    assert structures["kind"] == "bad" and structures["value"] == "5 of 6 ok"
    assert "2 systems (sevennet-0, teter) on cuda; 1 failed" in structures["detail"]
    assert refs["kind"] == "bad" and refs["value"] == "estimates"
    (ok,) = summary_headlines(table.assign(failed=0), {"mp-api"})
    assert ok["kind"] == "good" and ok["value"] == "6 of 6 ok"
