"""Verlet pair lists of ``ClassicalPairModel`` (see its module docstring, "Speed"): an outer
half list from vesin reaching ``OUTER_MARGIN`` beyond cutoff + skin and sorted by its i ends, the
working list taken from it in that order, and the checks that decide when a stored list still
holds (fixed cell or NPT). A mixin: the methods use the model's parameter table, charges and
element checks."""

from __future__ import annotations

import itertools
from concurrent.futures import ThreadPoolExecutor

import torch

#: extra reach (Å) of the outer list from which the working list is refreshed without vesin.
#: On small cells vesin's cost barely depends on the reach (all 27 images are visited), so a
#: wider margin (rebuilt when an atom moved margin/2) costs less per step than 3 Å: in 300-atom
#: silica at 3600 K, 4 Å cut the outer builds from 25 to 15 per 1,000 steps.
OUTER_MARGIN = 4.0


def _flat_ends(i: torch.Tensor, j: torch.Tensor, n_atoms: int) -> torch.Tensor:
    """Flat (3N) indices of the pair ends by component, ``[x_i, y_i, z_i, x_j, y_j, z_j]`` (6P):
    the gathers of the displacements and the (deterministic, 1-D) index_add of the pair forces.
    int32 where 3N fits: on a CPU building them in int64 costs more than a step's kernel."""
    small = 3 * n_atoms < 2**31
    dtype = torch.int32 if small else torch.long
    comp = torch.arange(3, device=i.device, dtype=dtype)[:, None] * n_atoms
    return torch.cat([(comp + i.to(dtype)).reshape(-1), (comp + j.to(dtype)).reshape(-1)])


class PairListMixin:
    """Neighbour-list methods of ``ClassicalPairModel``; state in ``self._nl``."""

    def _build_neighbors(self, pos, cell, pbc, z, sys_idx, n_systems) -> dict:
        """Outer half list within max cutoff + skin + OUTER_MARGIN (vesin, one call per
        system), then the working list within max cutoff + skin taken from it."""
        from vesin import NeighborList

        self._check_elements(z, sys_idx, n_systems)
        counts = torch.bincount(sys_idx, minlength=n_systems).tolist()  # systems are contiguous
        margin = OUTER_MARGIN if self.skin > 0 else 0.0
        reach = self.max_cutoff + self.skin + margin
        dev = pos.device
        pos64 = pos.detach().to(torch.float64)
        cell64 = cell.detach().to(torch.float64)
        starts = [0, *itertools.accumulate(counts)]
        jobs = [(s, starts[s], n) for s, n in enumerate(counts) if n > 0]

        def one(job):
            s, n0, n = job
            args = (pos64[n0 : n0 + n], cell64[s], pbc[s].detach().to(torch.bool))
            if self._nl_on_cpu:
                args = tuple(a.cpu() for a in args)
            nl = NeighborList(cutoff=reach, full_list=False)  # one per call: thread safe
            try:
                return nl.compute(*(a.contiguous() for a in args), quantities="ijD")
            except RuntimeError:
                if self._nl_on_cpu or args[0].device.type == "cpu":
                    raise
                self._nl_on_cpu = True  # this vesin build has no GPU support: list on the CPU
                return nl.compute(*(a.cpu().contiguous() for a in args), quantities="ijD")

        workers = torch.get_num_threads() if dev.type == "cpu" else 1
        if workers > 1 and len(jobs) > 1:  # vesin releases the GIL: systems side by side
            with ThreadPoolExecutor(max_workers=workers) as pool:
                lists = list(pool.map(one, jobs))
        else:
            lists = [one(job) for job in jobs]
        ii, jj, dd, pp = [], [], [], []
        for (s, n0, _), (i, j, vec) in zip(jobs, lists, strict=True):
            ii.append(i.to(device=dev, dtype=torch.long) + n0)
            jj.append(j.to(device=dev, dtype=torch.long) + n0)
            dd.append(vec.to(device=dev, dtype=pos.dtype))
            pp.append(torch.full((len(i),), s, dtype=torch.long, device=dev))
        if ii:
            i = torch.cat(ii)
            order = torch.argsort(i, stable=True)  # by i end: segment sums, systems contiguous
            i, j, psys = i[order], torch.cat(jj)[order], torch.cat(pp)[order]
            dr_ref = torch.cat(dd)[order].t().contiguous()  # (3, P): one row per component
        else:
            i = j = psys = torch.zeros(0, dtype=torch.long, device=dev)
            dr_ref = torch.zeros(3, 0, dtype=pos.dtype, device=dev)
        outer = {
            "i": i, "j": j, "psys": psys, "dr_ref": dr_ref, "margin": margin,
            "flat": _flat_ends(i, j, pos.shape[0]),
            "pos_ref": pos.detach().clone(), "cell": cell.detach().clone(),
            "inv_cell": torch.linalg.inv(cell.detach()), "pbc": pbc.detach().clone(),
        }
        self.n_outer_builds += 1
        return self._working_list(outer, dr_ref, pos, cell, pbc, z, sys_idx, n_systems)

    def _working_list(self, outer, dr_now, pos, cell, pbc, z, sys_idx, n_systems) -> dict:
        """The list the kernel runs on: pairs of ``outer`` within max cutoff + skin now
        (``dr_now``: their current vectors), with parameters, charge products and the flat
        indices of their ends, stored as contiguous per-pair arrays."""
        if outer["margin"] > 0:
            reach = (self.max_cutoff + self.skin) ** 2
            sel = torch.nonzero((dr_now * dr_now).sum(0) < reach).squeeze(1)
            i, j, psys = (outer[k].index_select(0, sel) for k in ("i", "j", "psys"))
            dr_ref = dr_now.index_select(1, sel)
        else:
            i, j, psys, dr_ref = outer["i"], outer["j"], outer["psys"], dr_now
        q = self._charges(z, sys_idx, n_systems)
        nz = self._nz
        ptype = ((self._set_index(sys_idx, n_systems).index_select(0, psys) * nz
                  + z.index_select(0, i)) * nz + z.index_select(0, j))
        flat = _flat_ends(i, j, pos.shape[0])
        self.n_neighbor_builds += 1
        return {
            "i": i,
            "j": j,
            "psys": psys,
            "flat": flat,
            # segment lengths of the pairs (sorted by i end, so by system): per atom, x3 rows
            "i_lengths": torch.bincount(i, minlength=pos.shape[0]).expand(3, -1).contiguous(),
            "sys_lengths": torch.bincount(psys, minlength=n_systems),
            "prm": self._table.index_select(1, ptype),  # (5, P): A|D0, B|a, C|r0, D|C12, E(rc)
            "qq": q.index_select(0, i) * q.index_select(0, j),
            "dr_ref": dr_ref,
            "pos_ref": pos.detach().clone(),
            "cell": cell.detach().clone(),
            "inv_cell": torch.linalg.inv(cell.detach()),
            "z": z.clone(),
            "sys_idx": sys_idx.clone(),
            "pbc": pbc.detach().clone(),
            "q2_sys": torch.zeros(n_systems, dtype=q.dtype, device=q.device).index_add(
                0, sys_idx, q * q
            ),
            "outer": outer,
        }

    def _pair_vectors(self, pos, cell, pbc, z, sys_idx, n_systems):
        """Neighbour data, the stored pair vectors (3, P) carried by the cell and the atoms'
        displacements since the build (3N), rebuilding the list only when needed: from the outer
        list while no atom moved more than OUTER_MARGIN/2 since it was built (fixed cell), else
        from vesin."""
        nl = self._nl
        zeros = torch.zeros(3 * pos.shape[0], dtype=pos.dtype, device=pos.device)
        if (
            nl is not None
            and self.skin > 0
            and nl["z"].shape == z.shape
            and nl["cell"].shape == cell.shape
            and torch.equal(nl["z"], z)
            and torch.equal(nl["sys_idx"], sys_idx)
            and torch.equal(nl["pbc"], pbc)
        ):
            reused = self._reused_pair_vectors(nl, pos, cell, sys_idx)
            if reused is not None:
                return nl, *reused
            outer = nl["outer"]
            if torch.equal(outer["cell"], cell):
                u = self._displacements(outer["pos_ref"], outer["inv_cell"], outer["pbc"], pos,
                                        cell, sys_idx)
                if 2.0 * float(torch.linalg.vector_norm(u, dim=1).max()) < outer["margin"]:
                    ends = u.t().reshape(-1).index_select(0, outer["flat"]).view(2, 3, -1)
                    dr_now = outer["dr_ref"] + ends[1] - ends[0]
                    nl = self._working_list(outer, dr_now, pos, cell, pbc, z, sys_idx, n_systems)
                    self._nl = nl
                    return nl, nl["dr_ref"], zeros
        nl = self._build_neighbors(pos, cell, pbc, z, sys_idx, n_systems)
        self._nl = nl
        return nl, nl["dr_ref"], zeros

    @staticmethod
    def _displacements(pos_ref, inv_ref_cell, pbc, pos, cell, sys_idx) -> torch.Tensor:
        """Each atom's displacement (N, 3) since ``pos_ref`` under a fixed cell, periodic jumps
        of wrapped positions removed."""
        ds = torch.einsum("ak,akl->al", pos - pos_ref, inv_ref_cell[sys_idx])
        ds = ds - torch.where(pbc[sys_idx], torch.round(ds), torch.zeros_like(ds))
        return torch.einsum("ak,akl->al", ds, cell[sys_idx])

    def _reused_pair_vectors(self, nl, pos, cell, sys_idx):
        """(stored pair vectors mapped by the cell (3, P), displacements u (3N: all x, then y,
        then z)), or None when the list may miss a pair in the cutoff.

        u is each atom's displacement since the build relative to the cell's affine map
        F = h_ref^-1 h (row vectors, so a stored pair vector becomes dr_ref F), periodic jumps of
        wrapped positions removed. No pair outside the list can have come within rc while
        sigma_min(F) (rc + skin) - 2 max|u| > rc; for a fixed cell that is max|u| < skin/2.
        """
        strained = not torch.equal(nl["cell"], cell)
        inv_ref = nl["inv_cell"][sys_idx]
        if strained:
            F = nl["inv_cell"] @ cell
            ds = torch.einsum("ak,akl->al", pos, torch.linalg.inv(cell)[sys_idx]) - torch.einsum(
                "ak,akl->al", nl["pos_ref"], inv_ref)
        else:
            ds = torch.einsum("ak,akl->al", pos - nl["pos_ref"], inv_ref)
        ds = ds - torch.where(nl["pbc"][sys_idx], torch.round(ds), torch.zeros_like(ds))
        u = torch.einsum("ak,akl->al", ds, cell[sys_idx])
        shrink = float(torch.linalg.svdvals(F).min()) if strained else 1.0
        max_u = float(torch.linalg.vector_norm(u, dim=1).max())
        if shrink * (self.max_cutoff + self.skin) - 2.0 * max_u <= self.max_cutoff:
            return None
        dr_ref = nl["dr_ref"]
        if strained:
            dr_ref = torch.einsum("kp,pkc->cp", dr_ref, F[nl["psys"]])
        return dr_ref, u.t().reshape(-1)

    def reset_cache(self) -> None:
        """Forget the cached neighbour list (the MD driver calls this at every segment start so
        that a resumed run does the same arithmetic as an uninterrupted one)."""
        self._nl = None

