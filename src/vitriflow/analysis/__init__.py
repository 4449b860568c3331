"""Structure analysis of amorphous cells: RDFs, coordination, bond angles, energies, S(Q).

Submodules: ``rdf`` (partial/total g(r)), ``coordination`` (cutoffs, CN, angles),
``scattering`` (neutron S(Q)/F(Q), R_chi), ``system`` (all tables of one system),
``report`` (the report section).
"""

from vitriflow.analysis.coordination import (
    bond_angles,
    coordination_numbers,
    default_triplets,
    first_minimum,
)
from vitriflow.analysis.rdf import RDF, half_min_width, pair_name, rdf, species_pairs
from vitriflow.analysis.scattering import (
    MissingScatteringLength,
    load_experimental_fq,
    load_scattering_lengths,
    neutron_fq,
    partial_structure_factors,
    r_chi,
)
from vitriflow.analysis.system import (
    AnalysisResult,
    AnalysisSettings,
    analyze_system,
    density_g_cm3,
    formation_energy_per_atom,
    is_silica,
)

__all__ = [
    "RDF", "AnalysisResult", "AnalysisSettings", "MissingScatteringLength", "analyze_system",
    "bond_angles", "coordination_numbers", "default_triplets", "density_g_cm3",
    "first_minimum", "formation_energy_per_atom", "half_min_width", "is_silica",
    "load_experimental_fq", "load_scattering_lengths", "neutron_fq", "pair_name",
    "partial_structure_factors", "r_chi", "rdf", "species_pairs",
]
