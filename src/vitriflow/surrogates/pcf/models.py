"""Scikit-learn-shaped PCF surrogates: reducer (autoencoder | PCA | none) + random forest.

``PCFSurrogate(kind=...)`` maps fingerprints ``X`` (n, f) to curves ``Y`` (n, L):

- ``autoencoder`` (Ayush et al.): a convolutional autoencoder compresses scaled curves to an
  ``n_latent``-dim code, a random forest maps fingerprint -> code, the decoder maps code -> curve.
  ``representation="curve"`` (default) convolves the 1-D g(r); ``"image"`` renders each curve
  as the paper's 64x64 grey-scale picture and uses its 2-D architecture (6 conv+pool layers with
  64, 32, 32, 16, 16, 8 filters down to a 1x1x8 code, mirrored decoder).
- ``pca``: the same with PCA as the reducer (baseline).
- ``direct``: one forest predicts all L curve points (the paper's Fig. 8a baseline).

Curves are divided by one global scale (their training maximum) so the network sees values in
[0, 1] like the paper's grey levels; predictions are scaled back and clipped at 0.
"""

from __future__ import annotations

import copy
import logging
from contextlib import contextmanager

import numpy as np
import torch
from sklearn.base import BaseEstimator, RegressorMixin, TransformerMixin
from sklearn.decomposition import PCA
from sklearn.ensemble import RandomForestRegressor
from sklearn.model_selection import GroupShuffleSplit
from torch import nn

log = logging.getLogger("vitriflow.surrogates.pcf")

KINDS = ("autoencoder", "pca", "direct")


@contextmanager
def _torch_threads(n: int | None):
    if not n:
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(old)


# ---------------------------------------------------------------------------------------------
# networks
class _Conv1dAE(nn.Module):
    """Conv/max-pool encoder, dense bottleneck, upsample/conv decoder for 1-D curves."""

    def __init__(self, length: int, latent_dim: int, channels: tuple[int, ...], kernel: int):
        super().__init__()
        levels = len(channels)
        self.length = length
        self.padded = -(-length // 2**levels) * 2**levels
        self.channels = channels
        self.inner = self.padded // 2**levels
        pad = kernel // 2
        enc, prev = [], 1
        for c in channels:
            enc += [nn.Conv1d(prev, c, kernel, padding=pad), nn.ReLU(), nn.MaxPool1d(2)]
            prev = c
        self.encoder = nn.Sequential(*enc, nn.Flatten(), nn.Linear(prev * self.inner, latent_dim))
        self.expand = nn.Sequential(nn.Linear(latent_dim, prev * self.inner), nn.ReLU())
        dec = []
        for c in reversed(channels):
            dec += [nn.Upsample(scale_factor=2), nn.Conv1d(prev, c, kernel, padding=pad), nn.ReLU()]
            prev = c
        dec.append(nn.Conv1d(prev, 1, kernel, padding=pad))
        self.decoder_convs = nn.Sequential(*dec)

    def encode(self, y: torch.Tensor) -> torch.Tensor:
        x = y.unsqueeze(1)
        if self.padded > self.length:
            x = nn.functional.pad(x, (0, self.padded - self.length), mode="replicate")
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        h = self.expand(z).view(z.shape[0], self.channels[-1], self.inner)
        return self.decoder_convs(h)[:, 0, : self.length]


class _Conv2dAE(nn.Module):
    """The paper's image autoencoder: 64x64x1 -> 1x1x8 with conv+max-pool, no dense layer."""

    def __init__(self, size: int, latent_dim: int, channels: tuple[int, ...]):
        super().__init__()
        levels = len(channels)
        if size != 2**levels:
            raise ValueError(f"pcf autoencoder: image_size {size} needs {int(np.log2(size))} "
                             f"layers; got {levels}")
        chans = (*channels[:-1], latent_dim)
        enc, prev = [], 1
        for c in chans:
            enc += [nn.Conv2d(prev, c, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
            prev = c
        self.encoder_net = nn.Sequential(*enc)
        dec = []
        for c in reversed(chans):
            dec += [nn.ConvTranspose2d(prev, c, 3, padding=1), nn.ReLU(),
                    nn.Upsample(scale_factor=2)]
            prev = c
        dec += [nn.Conv2d(prev, 1, 3, padding=1), nn.Sigmoid()]
        self.decoder_net = nn.Sequential(*dec)
        self.latent_dim = latent_dim

    def encode(self, img: torch.Tensor) -> torch.Tensor:
        return self.encoder_net(img).flatten(1)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder_net(z.view(z.shape[0], self.latent_dim, 1, 1))


def curves_to_images(y: np.ndarray, size: int = 64) -> np.ndarray:
    """Render scaled curves (values in [0, 1]) as filled grey-scale images (n, 1, size, size).

    Column j is the curve resampled at ``size`` points; pixel row i (from the bottom) is lit by
    the fraction of it below the curve, so the column sum / size gives the value back exactly.
    """
    n, length = y.shape
    cols = np.stack([np.interp(np.linspace(0, length - 1, size), np.arange(length), c) for c in y])
    cols = np.clip(cols, 0.0, 1.0) * size
    rows = np.arange(size)[:, None]
    img = np.clip(cols[:, None, :] - rows[None, :, :], 0.0, 1.0)  # row 0 = bottom
    return img[:, ::-1, :][:, None].astype(np.float32).copy()


def images_to_curves(img: np.ndarray, length: int) -> np.ndarray:
    size = img.shape[-1]
    cols = img[:, 0].sum(axis=1) / size
    return np.stack([np.interp(np.arange(length), np.linspace(0, length - 1, size), c)
                     for c in cols])


# ---------------------------------------------------------------------------------------------
class ConvAutoencoder(TransformerMixin, BaseEstimator):
    """Convolutional autoencoder as a scikit-learn transformer on scaled curves (n, L).

    ``transform`` gives the latent code, ``inverse_transform`` decodes. ``history_`` holds the
    per-epoch training and validation MSE (validation compositions are held apart by ``groups``
    when given); the weights of the best validation epoch are kept (early stopping).
    """

    def __init__(self, latent_dim: int = 8, representation: str = "curve",
                 channels: tuple[int, ...] = (8, 16, 32, 32), kernel_size: int = 5,
                 image_size: int = 64, epochs: int = 300, batch_size: int = 32,
                 learning_rate: float = 2e-3, patience: int = 40, val_fraction: float = 0.15,
                 random_state: int = 0, n_threads: int | None = 1):
        self.latent_dim = latent_dim
        self.representation = representation
        self.channels = channels
        self.kernel_size = kernel_size
        self.image_size = image_size
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.patience = patience
        self.val_fraction = val_fraction
        self.random_state = random_state
        self.n_threads = n_threads

    def _to_input(self, y: np.ndarray) -> torch.Tensor:
        if self.representation == "image":
            return torch.from_numpy(curves_to_images(y, self.image_size))
        return torch.as_tensor(y, dtype=torch.float32)

    def _from_output(self, out: torch.Tensor) -> np.ndarray:
        arr = out.detach().cpu().numpy().astype(np.float64)
        if self.representation == "image":
            return images_to_curves(arr, self.n_points_)
        return arr

    def fit(self, y, groups=None):
        if self.representation not in ("curve", "image"):
            raise ValueError(f"pcf autoencoder: representation {self.representation!r}; expected "
                             "'curve' or 'image'")
        y = np.asarray(y, dtype=np.float64)
        if y.ndim != 2 or len(y) < 4:
            raise ValueError(f"pcf autoencoder: expected curves of shape (n>=4, L); got {y.shape}")
        self.n_points_ = y.shape[1]
        with _torch_threads(self.n_threads):
            torch.manual_seed(self.random_state)
            if self.representation == "image":
                net = _Conv2dAE(self.image_size, self.latent_dim, tuple(self.channels))
            else:
                net = _Conv1dAE(y.shape[1], self.latent_dim, tuple(self.channels), self.kernel_size)
            idx_tr, idx_va = np.arange(len(y)), np.array([], dtype=int)
            if self.val_fraction and self.val_fraction > 0:
                g = np.asarray(groups) if groups is not None else np.arange(len(y))
                if len(np.unique(g)) >= 2:
                    splitter = GroupShuffleSplit(1, test_size=self.val_fraction,
                                                 random_state=self.random_state)
                    idx_tr, idx_va = next(splitter.split(y, groups=g))
            x_all = self._to_input(y)
            x_tr, x_va = x_all[idx_tr], x_all[idx_va]
            opt = torch.optim.Adam(net.parameters(), lr=self.learning_rate)
            gen = torch.Generator().manual_seed(self.random_state)
            history = {"epoch": [], "train_mse": [], "val_mse": []}
            best, best_state, stale = np.inf, None, 0
            for epoch in range(int(self.epochs)):
                net.train()
                perm = torch.randperm(len(x_tr), generator=gen)
                total = 0.0
                for start in range(0, len(x_tr), self.batch_size):
                    xb = x_tr[perm[start : start + self.batch_size]]
                    opt.zero_grad()
                    loss = nn.functional.mse_loss(net.decode(net.encode(xb)), xb)
                    loss.backward()
                    opt.step()
                    total += loss.item() * len(xb)
                net.eval()
                with torch.no_grad():
                    tr = total / len(x_tr)
                    va = (float(nn.functional.mse_loss(net.decode(net.encode(x_va)), x_va))
                          if len(x_va) else tr)
                history["epoch"].append(epoch + 1)
                history["train_mse"].append(tr)
                history["val_mse"].append(va)
                if va < best - 1e-12:
                    best, best_state, stale = va, copy.deepcopy(net.state_dict()), 0
                else:
                    stale += 1
                    if self.patience and stale >= self.patience:
                        break
            if best_state is None:
                raise RuntimeError("pcf autoencoder: training loss is not finite; lower "
                                   f"autoencoder.learning_rate (now {self.learning_rate})")
            net.load_state_dict(best_state)
            net.eval()
        self.net_ = net
        self.history_ = history
        self.best_epoch_ = int(history["epoch"][int(np.argmin(history["val_mse"]))])
        self.n_val_ = len(idx_va)
        log.info("autoencoder: %d epochs, best %d, val MSE %.3g (scaled units)",
                 len(history["epoch"]), self.best_epoch_, best)
        return self

    def transform(self, y):
        with torch.no_grad(), _torch_threads(1):
            return self.net_.encode(
                self._to_input(np.asarray(y, dtype=np.float64))).numpy().astype(np.float64)

    def inverse_transform(self, z):
        with torch.no_grad(), _torch_threads(1):
            out = self.net_.decode(torch.as_tensor(np.asarray(z), dtype=torch.float32))
        return self._from_output(out)


# ---------------------------------------------------------------------------------------------
class PCFSurrogate(RegressorMixin, BaseEstimator):
    """Fingerprint -> g(r) surrogate: reducer (``kind``) + random forest (see module doc).

    ``forest``: keyword arguments of :class:`sklearn.ensemble.RandomForestRegressor` (the tuned
    hyper-parameters); ``autoencoder``: keyword arguments of :class:`ConvAutoencoder`.
    ``pair_block``: (start, stop) columns of the pair one-hot in ``X``; when given, one forest
    per pair is fitted on that pair's rows only (the reducer stays shared), so a rare pair's
    prediction is never an average over other pairs' leaves.
    """

    def __init__(self, kind: str = "autoencoder", n_latent: int = 8, forest: dict | None = None,
                 autoencoder: dict | None = None, random_state: int = 0, n_jobs: int = 1,
                 pair_block: tuple[int, int] | None = None):
        self.kind = kind
        self.n_latent = n_latent
        self.forest = forest
        self.autoencoder = autoencoder
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.pair_block = pair_block

    # -- reducer ------------------------------------------------------------------------
    def fit_reducer(self, y, groups=None):
        """Fit the scale and the reducer on training curves only; returns the latent targets."""
        if self.kind not in KINDS:
            raise ValueError(f"pcf model kind {self.kind!r}; expected one of {list(KINDS)}")
        y = np.asarray(y, dtype=np.float64)
        self.scale_ = float(np.max(y)) if np.max(y) > 0 else 1.0
        ys = y / self.scale_
        self.n_points_ = y.shape[1]
        if self.kind == "autoencoder":
            params = dict(self.autoencoder or {})
            params.setdefault("random_state", self.random_state)
            self.reducer_ = ConvAutoencoder(latent_dim=self.n_latent, **params).fit(ys, groups)
            z = self.reducer_.transform(ys)
            # standardised codes: the forest's summed-MSE split criterion weighs every code equally
            self.z_mean_, self.z_std_ = z.mean(0), np.where(z.std(0) > 0, z.std(0), 1.0)
        elif self.kind == "pca":
            n = min(self.n_latent, *ys.shape)
            self.reducer_ = PCA(n_components=n, random_state=self.random_state).fit(ys)
            z = self.reducer_.transform(ys)
            # raw scores: the forest's summed MSE on them equals the curve-space MSE
            self.z_mean_, self.z_std_ = np.zeros(n), np.ones(n)
        else:
            self.reducer_ = None
            return ys
        return (z - self.z_mean_) / self.z_std_

    def latent(self, y) -> np.ndarray:
        """Latent targets of true curves (what the forest is asked to predict)."""
        ys = np.asarray(y, dtype=np.float64) / self.scale_
        if self.reducer_ is None:
            return ys
        return (self.reducer_.transform(ys) - self.z_mean_) / self.z_std_

    def decode(self, z) -> np.ndarray:
        z = np.asarray(z, dtype=np.float64)
        if self.reducer_ is None:
            ys = z
        else:
            ys = self.reducer_.inverse_transform(z * self.z_std_ + self.z_mean_)
        return np.clip(ys * self.scale_, 0.0, None)

    # -- sklearn API --------------------------------------------------------------------
    def fit(self, X, y, groups=None, z=None):
        """Fit reducer then forest. ``z``: precomputed latent targets from :meth:`fit_reducer`."""
        if z is None:
            z = self.fit_reducer(y, groups)
        params = {"n_estimators": 100, **(self.forest or {})}
        X = np.asarray(X, dtype=np.float64)
        keys = self._pair_keys(X)
        self.forests_ = {}
        for key in np.unique(keys):
            rows = keys == key
            forest = RandomForestRegressor(random_state=self.random_state, n_jobs=self.n_jobs,
                                           **params)
            forest.fit(X[rows], np.asarray(z)[rows])
            forest.n_jobs = 1  # small prediction batches are faster without a worker pool
            self.forests_[int(key)] = forest
        self.n_features_in_ = X.shape[1]
        return self

    def _pair_keys(self, X: np.ndarray) -> np.ndarray:
        """Forest index of each row: its pair column with ``pair_block``, else 0 (one forest)."""
        if self.pair_block is None:
            return np.zeros(len(X), dtype=int)
        a, b = self.pair_block
        return np.argmax(X[:, a:b], axis=1)

    @property
    def forest_(self) -> RandomForestRegressor:
        """The forest (the first one when there is one per pair)."""
        return next(iter(self.forests_.values()))

    def predict_latent(self, X) -> np.ndarray:
        # Same average as RandomForestRegressor.predict, without its per-tree validation and
        # worker-pool overhead: a glass's handful of rows is predicted in well under a millisecond.
        X32 = np.ascontiguousarray(np.asarray(X, dtype=np.float64), dtype=np.float32)
        if X32.ndim != 2 or X32.shape[1] != self.n_features_in_:
            raise ValueError(f"pcf model: X of shape {X32.shape}; expected (n, "
                             f"{self.n_features_in_})")
        keys = self._pair_keys(X32)
        z = np.zeros((len(X32), self.forest_.n_outputs_))
        for key in np.unique(keys):
            forest = self.forests_.get(int(key))
            if forest is None:
                raise ValueError(f"pcf model: no forest for pair column {int(key)}: that pair was "
                                 "not in training")
            rows = np.flatnonzero(keys == key)
            for est in forest.estimators_:
                z[rows] += est.tree_.predict(X32[rows]).reshape(len(rows), -1)
            z[rows] /= len(forest.estimators_)
        return z

    def predict(self, X) -> np.ndarray:
        return self.decode(self.predict_latent(X))
