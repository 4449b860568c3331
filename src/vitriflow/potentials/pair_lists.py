"""Verlet pair lists of ``ClassicalPairModel`` (see its module docstring, "Speed"): an outer
half list reaching ``OUTER_MARGIN`` beyond cutoff + skin and sorted by its i ends (from vesin, or
from an all-image search over small cells), the
working list taken from it in that order, and the checks that decide when a stored list still
holds (fixed cell or NPT). A mixin: the methods use the model's parameter table, charges and
element checks."""

from __future__ import annotations

import functools
import itertools
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

#: extra reach (Å) of the outer list from which the working list is refreshed without a new
#: search. On small cells a search visits every periodic image whatever the reach, so a wide
#: margin (rebuilt when two atoms have moved that far in all) is cheap: in 300-atom silica at
#: 3600 K, 4 Å needs 15 outer builds per 1,000 steps (3 Å: 25).
OUTER_MARGIN = 4.0


class Segments:
    """Consecutive runs of a sorted pair list (``lengths`` pairs each, empty runs allowed), summed
    along the last axis by ``sum``: on a CPU numpy's ``add.reduceat`` over the non-empty runs
    (~2x faster than ``torch.segment_reduce``, also summing each run in order), elsewhere
    ``segment_reduce``."""

    def __init__(self, lengths: torch.Tensor) -> None:
        self.lengths = lengths
        self.n_items = int(lengths.sum())
        if lengths.device.type == "cpu":
            starts = (torch.cumsum(lengths, 0) - lengths).numpy()
            filled = lengths.numpy() > 0
            self._all_filled = bool(filled.all())
            self._filled = torch.from_numpy(filled)
            self._starts = starts if self._all_filled else starts[filled]

    def sum(self, values: torch.Tensor) -> torch.Tensor:
        """(..., runs) sums of ``values`` (..., P)."""
        runs = self.lengths.shape[0]
        if self.n_items == 0:
            return values.new_zeros(*values.shape[:-1], runs)
        if values.device.type != "cpu":
            lengths = self.lengths.expand(*values.shape[:-1], -1).contiguous()
            return torch.segment_reduce(values, "sum", lengths=lengths, axis=values.dim() - 1)
        sums = torch.from_numpy(np.add.reduceat(values.numpy(), self._starts, axis=-1))
        if self._all_filled:
            return sums
        out = values.new_zeros(*values.shape[:-1], runs)
        out[..., self._filled] = sums
        return out


def _flat_ends(i: torch.Tensor, j: torch.Tensor, n_atoms: int) -> torch.Tensor:
    """Flat (3N) indices of the pair ends by component, ``[x_i, y_i, z_i, x_j, y_j, z_j]`` (6P):
    the kernel's gathers of the displacements (j ends, as int64: the 1-D scatter of the pair
    forces). int32 where 3N fits: on a CPU building them in int64 costs more than a step's
    kernel."""
    small = 3 * n_atoms < 2**31
    dtype = torch.int32 if small else torch.long
    comp = torch.arange(3, device=i.device, dtype=dtype)[:, None] * n_atoms
    return torch.cat([(comp + i.to(dtype)).reshape(-1), (comp + j.to(dtype)).reshape(-1)])


#: most atom-pair-image tests (bytes of the mask) of one all-image search; 8 cells of 300 atoms
#: on 14 images take 1e7
MAX_IMAGE_TESTS = 2**27


def _small_cell_shifts(cell: torch.Tensor, pbc: torch.Tensor, reach: float, n_atoms: int):
    """Integer image shifts (M, 3) of a half list over small cells: (0, 0, 0) first, then the
    lexicographically positive images within ceil(reach / width) in every periodic direction
    (width: the cell's perpendicular width, the tightest over the batch). None where vesin is
    the better search: some cell is at least twice the reach wide in every direction (its cell
    list prunes images), or the batch's atom-pair-image tests (``n_atoms`` per cell) would
    exceed ``MAX_IMAGE_TESTS``."""
    rows = cell.to(torch.float64)
    vol = torch.abs(torch.linalg.det(rows))
    cross = torch.stack([torch.linalg.cross(rows[:, 1], rows[:, 2]),
                         torch.linalg.cross(rows[:, 2], rows[:, 0]),
                         torch.linalg.cross(rows[:, 0], rows[:, 1])], dim=1)
    widths = vol[:, None] / torch.linalg.vector_norm(cross, dim=-1)  # (S, 3)
    periodic = pbc.to(torch.bool)
    small = (widths < 2.0 * reach) & periodic
    if not bool(small.any(dim=1).all()):
        return None
    m = torch.where(periodic, torch.ceil(reach / widths), torch.zeros_like(widths)).amax(0)
    ranges = [range(-int(k), int(k) + 1) for k in m.tolist()]
    images = [v for v in itertools.product(*ranges) if v > (0, 0, 0)]
    if cell.shape[0] * n_atoms**2 * (len(images) + 1) > MAX_IMAGE_TESTS:
        return None  # many atoms in a thin cell: the test matrix would not fit
    return torch.tensor([(0, 0, 0), *images], dtype=torch.float64)


def _image_mask(w, shifts, r2: float):
    """(S, n, M, n): image ``m`` of atom j lies within sqrt(r2) of atom i, for j > i on the
    zero image (a half list). ``w``: wrapped positions (S, n, 3); ``shifts``: (S, M, 3)."""
    x, y, z = w.unbind(-1)
    sx, sy, sz = shifts.unbind(-1)
    dx = x[:, None, None, :] + sx[:, None, :, None] - x[:, :, None, None]
    dy = y[:, None, None, :] + sy[:, None, :, None] - y[:, :, None, None]
    dz = z[:, None, None, :] + sz[:, None, :, None] - z[:, :, None, None]
    n = w.shape[1]
    ar = torch.arange(n, device=w.device)
    later = (ar[None, :] > ar[:, None])[:, None, :]  # (n, 1, n)
    other_image = (torch.arange(shifts.shape[1], device=w.device) > 0)[None, :, None]
    return (dx * dx + dy * dy + dz * dz < r2) & (later | other_image)


@functools.cache
def _compiled_image_mask():
    # static atom and image counts: with all sizes symbolic Inductor's index arithmetic is ~8x
    # slower here
    return torch.compile(_image_mask, dynamic=False)


def _small_cell_pairs(pos, cell, pbc, shifts, reach: float, compiled: bool):
    """(i, j, system, pair vectors (3, P)) of the half list within ``reach`` of a batch of
    equal-size systems, by testing every atom pair on every image in ``shifts`` (M, 3): for
    cells under twice the reach, where a cell list degenerates to the same all-image search.
    Sorted by i end (row-major), with no sort."""
    n_sys = cell.shape[0]
    n = pos.shape[0] // n_sys
    cell64 = cell.to(torch.float64)
    frac = torch.einsum("snk,skl->snl", pos.to(torch.float64).view(n_sys, n, 3),
                        torch.linalg.inv(cell64))
    frac = frac - torch.where(pbc[:, None, :], torch.floor(frac), torch.zeros_like(frac))
    w = torch.einsum("snk,skl->snl", frac, cell64).to(pos.dtype).contiguous()
    cart = torch.einsum("mk,skl->sml", shifts.to(cell.device), cell64).to(pos.dtype).contiguous()
    mask_fn = _image_mask
    if compiled:
        mask_fn = _compiled_image_mask()
        if n_sys > 1:  # one compiled kernel for any batch size (as fast as a static one)
            torch._dynamo.mark_dynamic(w, 0)
            torch._dynamo.mark_dynamic(cart, 0)
    mask = mask_fn(w, cart, float(reach) ** 2)
    m_img = shifts.shape[0]
    row, col = torch.nonzero(mask.view(n_sys * n, m_img * n)).unbind(1)
    psys = torch.div(row, n, rounding_mode="floor")
    image = torch.div(col, n, rounding_mode="floor")
    j = col - image * n + psys * n
    flat_w = w.reshape(-1, 3)
    dr = flat_w.index_select(0, j) - flat_w.index_select(0, row) + cart[psys, image]
    return row, j, psys, dr.t().contiguous()


def _two_largest(u: torch.Tensor) -> float:
    """Sum of the two largest displacements (rows of ``u``, (N, 3)): the most any pair's
    length can have changed (twice the largest for a single atom)."""
    norms = torch.linalg.vector_norm(u, dim=1)
    if norms.shape[0] < 2:
        return 2.0 * float(norms.max()) if norms.shape[0] else 0.0
    return float(torch.topk(norms, 2).values.sum())


class PairListMixin:
    """Neighbour-list methods of ``ClassicalPairModel``; state in ``self._nl``."""

    def _build_neighbors(self, pos, cell, pbc, z, sys_idx, n_systems) -> dict:
        """Outer half list within max cutoff + skin + OUTER_MARGIN, sorted by i end, then the
        working list within max cutoff + skin taken from it."""
        self._check_elements(z, sys_idx, n_systems)
        counts = torch.bincount(sys_idx, minlength=n_systems).tolist()  # systems are contiguous
        margin = OUTER_MARGIN if self.skin > 0 else 0.0
        reach = self.max_cutoff + self.skin + margin
        shifts = None
        if self._compile and pos.device.type == "cpu" and len(set(counts)) == 1 and counts[0]:
            shifts = _small_cell_shifts(cell.detach(), pbc, reach, counts[0])
        if shifts is not None:
            i, j, psys, dr_ref = _small_cell_pairs(pos.detach(), cell.detach(), pbc, shifts,
                                                   reach, compiled=True)
        else:
            i, j, psys, dr_ref = self._vesin_pairs(pos, cell, pbc, counts, reach)
        outer = {
            "i": i, "j": j, "psys": psys, "dr_ref": dr_ref, "margin": margin,
            # the refresh's gathers: u_i repeated per i segment, u_j by int32 index (both cheaper
            # than one flat gather)
            "i_counts": torch.bincount(i, minlength=pos.shape[0]),
            "j_ends": j.to(torch.int32) if pos.shape[0] < 2**31 else j,
            "pos_ref": pos.detach().clone(), "cell": cell.detach().clone(),
            "inv_cell": torch.linalg.inv(cell.detach()), "pbc": pbc.detach().clone(),
        }
        self.n_outer_builds += 1
        return self._working_list(outer, dr_ref, pos, cell, pbc, z, sys_idx, n_systems)

    def _vesin_pairs(self, pos, cell, pbc, counts, reach):
        """(i, j, system, pair vectors (3, P)) of the half list within ``reach`` by vesin, one
        call per system (side by side on a multi-threaded CPU), sorted by i end."""
        from vesin import NeighborList

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
        if not ii:
            empty = torch.zeros(0, dtype=torch.long, device=dev)
            return empty, empty, empty, torch.zeros(3, 0, dtype=pos.dtype, device=dev)
        i = torch.cat(ii)
        order = torch.argsort(i, stable=True)  # by i end: segment sums, systems contiguous
        return i[order], torch.cat(jj)[order], torch.cat(pp)[order], \
            torch.cat(dd)[order].t().contiguous()

    def _working_list(self, outer, dr_now, pos, cell, pbc, z, sys_idx, n_systems) -> dict:
        """The list the kernel runs on: pairs of ``outer`` within max cutoff + skin now
        (``dr_now``: their current vectors), with parameters, charge products and the flat
        indices of their ends, stored as contiguous per-pair arrays."""
        if outer["margin"] > 0:
            x, y, zc = dr_now.unbind(0)
            r2 = (x * x).addcmul_(y, y).addcmul_(zc, zc)
            sel = torch.nonzero(r2 < (self.max_cutoff + self.skin) ** 2).squeeze(1)
            i, j, psys = (outer[k].index_select(0, sel) for k in ("i", "j", "psys"))
            dr_ref = dr_now.index_select(1, sel)
        else:
            i, j, psys, dr_ref = outer["i"], outer["j"], outer["psys"], dr_now
        q = self._charges(z, sys_idx, n_systems)
        nz = self._nz
        ptype = ((self._set_index(sys_idx, n_systems).index_select(0, psys) * nz
                  + z.index_select(0, i)) * nz + z.index_select(0, j))
        flat = _flat_ends(i, j, pos.shape[0])
        n_pairs = i.shape[0]
        self.n_neighbor_builds += 1
        return {
            "i": i,
            "j": j,
            "psys": psys,
            "flat": flat,
            "j_flat": flat[3 * n_pairs:].to(torch.long),  # the j-end force sum's scatter index
            # the pairs (sorted by i end, so by system) in consecutive runs per atom and system
            "i_segments": Segments(torch.bincount(i, minlength=pos.shape[0])),
            "sys_segments": Segments(torch.bincount(psys, minlength=n_systems)),
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
        list while the two largest displacements since it was built sum below OUTER_MARGIN
        (fixed cell), else by a new outer build."""
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
                if _two_largest(u) < outer["margin"]:
                    u3 = u.t().contiguous()
                    n_pairs = outer["dr_ref"].shape[1]
                    dr_now = outer["dr_ref"] - torch.repeat_interleave(
                        u3, outer["i_counts"], dim=1, output_size=n_pairs)
                    dr_now += u3.index_select(1, outer["j_ends"])
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
        sigma_min(F) (rc + skin) - (|u|_1 + |u|_2) > rc, |u|_1 and |u|_2 being the two largest
        displacements (no pair's length can change by more); for a fixed cell that is
        |u|_1 + |u|_2 < skin.
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
        if shrink * (self.max_cutoff + self.skin) - _two_largest(u) <= self.max_cutoff:
            return None
        dr_ref = nl["dr_ref"]
        if strained:
            dr_ref = torch.einsum("kp,pkc->cp", dr_ref, F[nl["psys"]])
        return dr_ref, u.t().reshape(-1)

    def reset_cache(self) -> None:
        """Forget the cached neighbour list (the MD driver calls this at every segment start so
        that a resumed run does the same arithmetic as an uninterrupted one)."""
        self._nl = None

