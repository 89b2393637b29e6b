"""Two deep clusterers, each a ``Clusterer`` (see ``base``) with its own embedding ``latent(X)``.

- ``DEC`` (deep): Deep Embedded Clustering (Xie, Girshick & Farhadi 2016): an autoencoder, k-means
  on its codes, then self-training of Student-t soft assignments against the sharpened target.
- ``ClusterGAN`` (deep): ClusterGAN (Mukherjee et al. 2019): a WGAN-GP whose generator draws from
  a mixed latent (continuous ``z_n`` plus a one-hot ``z_c``) and an encoder trained to invert it;
  a customer's segment is the encoder's one-hot argmax.

Both take a fixed ``n_clusters`` (the comparison picks k by K-Means' silhouette, ``KFromKMeans``).
Inputs are already standardised: nothing is scaled here. ``transform`` is the Euclidean distance to
each segment's centre *in the input space* (the mean of the fit rows the network assigned to it),
never in the latent space. Segment ids are renumbered from the largest segment down after the fit
(``relabel_by_size`` on the fit rows' assignment) and ``predict`` applies the same mapping. A
cluster the fit rows never reach is dropped: ``n_clusters_`` counts the non-empty ones, ids stay
compact ``0..n_clusters_-1`` and ``predict`` takes the argmax over the kept clusters only.

Determinism: every fit seeds numpy (``default_rng(seed)``: subsample, held-out slice) and torch
(``torch.manual_seed(seed)`` inside ``torch.random.fork_rng``, so the caller's global torch RNG
state is restored afterwards), and runs torch on ``num_threads`` intra-op threads (default 1; the
previous setting is restored on exit, also for ``predict`` / ``transform`` / ``latent``). The same
seed repeats exactly on the same machine. One thread is both the fastest for nets this small
(measured: a 256-row step is ~2x slower on two threads) and independent of the core count.

Measured fit times with the defaults (``OMP_WAIT_POLICY=PASSIVE``, 2 CPU cores shared with other
work, torch 2.13.0 CPU, scikit-learn 1.6.1), in a process that has already used torch.optim once
(the first use imports ``torch._dynamo``, a one-off ~1.2 s per process, included in the "first" numbers):
15,000 rows x 20 columns (eight overlapping Gaussian groups, make_blobs cluster_std 7, standardised,
n_clusters 8): DEC 3.2-3.5 s (first 4.1-5.6 s; 6,000-row fit subsample, self-training stopped by
``tol`` after 37 epochs), ClusterGAN 4.9-5.2 s (first 5.6-5.9 s; 4,000-row subsample, all 30 epochs,
450 generator steps); 2,000 rows x 6 columns (four blobs, cluster_std 1, n_clusters 4): DEC 0.7-1.0 s,
ClusterGAN 1.9-2.1 s (stopped as stable after ~20 epochs).
"""

from __future__ import annotations

import contextlib
import copy
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from sklearn.cluster import KMeans
from torch import nn
from torch.nn import functional as F

from customer_intel.segmentation.base import centres_of, distances_to, relabel_by_size

CHUNK = 100_000  # rows per forward pass at prediction time (bounded memory at 1M rows)
HELD_OUT = 0.1  # share of the training rows held out for early stopping


# ----------------------------------------------------------------------------------------------
# Shared helpers
# ----------------------------------------------------------------------------------------------


def _matrix(X: np.ndarray) -> np.ndarray:
    X = np.asarray(X, dtype=float)
    if X.ndim != 2:
        raise ValueError(f"expected a 2-d matrix of standardised features; got shape {X.shape}")
    if not np.isfinite(X).all():
        raise ValueError("the input matrix has NaN or infinite values; the input space must impute and clip first")
    return X


@contextlib.contextmanager
def _torch_scope(seed: int | None, threads: int) -> Iterator[None]:
    """Torch on ``threads`` intra-op threads with its CPU RNG seeded; both restored on exit."""
    previous = torch.get_num_threads()
    torch.set_num_threads(max(1, int(threads)))
    try:
        with torch.random.fork_rng(devices=[]):
            if seed is not None:
                torch.manual_seed(int(seed))
            yield
    finally:
        torch.set_num_threads(previous)


def _mlp(n_in: int, hidden: tuple[int, ...], n_out: int, activation: Callable[[], nn.Module]) -> nn.Sequential:
    layers: list[nn.Module] = []
    width = n_in
    for h in hidden:
        layers += [nn.Linear(width, int(h)), activation()]
        width = int(h)
    layers.append(nn.Linear(width, n_out))
    return nn.Sequential(*layers)


def _leaky() -> nn.Module:
    return nn.LeakyReLU(0.2)


def _split_rows(n: int, max_rows: int | None, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(training rows, held-out rows) of a seeded subsample of at most ``max_rows`` of ``n`` rows;
    ``HELD_OUT`` of them held out (none when fewer than 20 rows)."""
    rows = np.arange(n) if max_rows is None or n <= max_rows else np.sort(rng.choice(n, size=int(max_rows), replace=False))
    rows = rows[rng.permutation(len(rows))]
    n_val = int(round(HELD_OUT * len(rows))) if len(rows) >= 20 else 0
    return np.sort(rows[n_val:]), np.sort(rows[:n_val])


def _batches(n: int, batch_size: int) -> Iterator[torch.Tensor]:
    """Index batches of a fresh permutation of ``n`` rows (torch's seeded RNG); a last batch of one row is dropped."""
    perm = torch.randperm(n)
    for start in range(0, n, batch_size):
        index = perm[start:start + batch_size]
        if len(index) > 1 or n == 1:
            yield index


def _cycle(n: int, batch_size: int) -> Iterator[torch.Tensor]:
    """Index batches without end: seeded permutations of ``n`` rows one after another (``_batches`` of each)."""
    while True:
        yield from _batches(n, batch_size)


def _chunked(fn: Callable[[torch.Tensor], torch.Tensor], X: np.ndarray) -> np.ndarray:
    """``fn`` over float32 chunks of ``X`` without gradients, concatenated (float64)."""
    out = []
    with torch.no_grad():
        for start in range(0, max(len(X), 1), CHUNK):  # an empty X still gives its (0, width) result
            out.append(fn(torch.as_tensor(X[start:start + CHUNK], dtype=torch.float32)).double().numpy())
    return np.concatenate(out)


def _g(value: float) -> float:
    return float(f"{float(value):.6g}")


class _DeepMixin:
    """What both deep clusterers share once their networks are trained: the size-ordered lookup from the
    network's raw clusters to segments, input-space centres, ``predict``, ``transform`` and ``latent``.

    A subclass provides ``_scores(x)`` (raw cluster scores, argmax = raw cluster) and ``_embed(x)``.
    """

    num_threads: int = 1
    centres_: np.ndarray | None = None

    def _check_fitted(self) -> None:
        if getattr(self, "centres_", None) is None:
            raise RuntimeError(f"{type(self).__name__} is not fitted: call fit(X) first")

    def _scores(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def _embed(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def _raw_scores(self, X: np.ndarray) -> np.ndarray:
        with _torch_scope(None, self.num_threads):
            return _chunked(self._scores, X)

    def _finish(self, X: np.ndarray) -> None:
        """Segments from the network's assignment of every fit row: ids by size, empty clusters dropped."""
        scores = self._raw_scores(X)
        raw = scores.argmax(axis=1).astype(np.int64)
        labels = relabel_by_size(raw)
        lookup = np.full(scores.shape[1], -1, dtype=np.int64)
        lookup[raw] = labels
        present = np.flatnonzero(lookup >= 0)
        self.kept_ = present[np.argsort(lookup[present])]  # raw cluster of each segment, in segment order
        self.n_clusters_ = len(self.kept_)
        self.centres_ = centres_of(X, labels, self.n_clusters_)
        self.sizes_ = np.bincount(labels, minlength=self.n_clusters_)

    def predict(self, X: np.ndarray) -> np.ndarray:
        """The segment of the highest score among the kept clusters, 0..n_clusters_-1, for every row (int64)."""
        self._check_fitted()
        X = _matrix(X)
        if not len(X):
            return np.zeros(0, dtype=np.int64)
        return self._raw_scores(X)[:, self.kept_].argmax(axis=1).astype(np.int64)

    def transform(self, X: np.ndarray) -> np.ndarray:
        """(rows, n_clusters_) Euclidean distances to each segment's centre in the input space."""
        self._check_fitted()
        return distances_to(_matrix(X), self.centres_)

    def latent(self, X: np.ndarray) -> np.ndarray:
        """The network's embedding of every row (see the class docstring for its columns)."""
        self._check_fitted()
        X = _matrix(X)
        with _torch_scope(None, self.num_threads):
            return _chunked(self._embed, X)


# ----------------------------------------------------------------------------------------------
# DEC
# ----------------------------------------------------------------------------------------------


def _student_t(z: torch.Tensor, mu: torch.Tensor, alpha: float) -> torch.Tensor:
    """DEC's soft assignment q_ij: a Student-t kernel (``alpha`` degrees of freedom) on ||z_i - mu_j||, rows normalised."""
    d2 = ((z[:, None, :] - mu[None, :, :]) ** 2).sum(dim=2)
    q = (1.0 + d2 / alpha).pow(-(alpha + 1.0) / 2.0)
    return q / q.sum(dim=1, keepdim=True)


def _target(q: torch.Tensor) -> torch.Tensor:
    """DEC's auxiliary target p_ij = (q_ij^2 / f_j) / sum_j'(q_ij'^2 / f_j'), f_j = sum_i q_ij."""
    p = q.pow(2) / q.sum(dim=0, keepdim=True)
    return p / p.sum(dim=1, keepdim=True)


@dataclass
class DEC(_DeepMixin):
    """Deep Embedded Clustering (Xie, Girshick & Farhadi 2016) with ``n_clusters`` clusters.

    1. An autoencoder (fully connected, ReLU; encoder ``hidden`` down to ``latent_dim``, decoder the
       mirror image, linear output) is pretrained on the mean squared reconstruction error with Adam
       (``lr``), for at most ``pretrain_epochs`` epochs with early stopping on a held-out 10% of the
       training rows: stop after ``patience`` epochs without a 0.01% improvement, keep the best weights.
    2. K-Means (scikit-learn, ``n_init`` 10, seeded) on the codes of all the subsample's rows (the
       held-out slice only serves pretraining's early stopping) initialises the centres mu_j.
    3. Self-training: soft assignments q_ij with the Student-t kernel (``alpha`` degrees of freedom),
       the target p_ij = q_ij^2 / f_j (f_j = sum_i q_ij), row-normalised, recomputed on all the
       subsample's rows every ``update_interval`` epochs (the paper's T, counted in epochs); encoder and centres
       minimise KL(P || Q) by Adam (``lr``) for at most ``epochs`` epochs, stopping (the paper's rule)
       when fewer than ``tol`` of the training rows change cluster between two target updates.
       ``recon_weight`` > 0 keeps the decoder's reconstruction loss, IDEC-style (Guo et al. 2017):
       the loss is KL + ``recon_weight`` x MSE (default 0.1, which keeps the embedding from
       distorting); ``recon_weight=0`` is the paper's DEC exactly.

    Training rows: a seeded subsample of at most ``max_train_rows`` rows of ``X`` (all when fewer).
    ``predict``: argmax_j q_ij on the encoder's code. ``latent(X)``: the encoder's code,
    (rows, ``latent_dim``). ``info()``: hyperparameters, epochs run, final losses and both stopping
    reasons (``pretrain_stop``: "early_stopping" or "max_epochs"; ``stop_reason``: "tol" or "max_epochs").
    """

    n_clusters: int = 5
    latent_dim: int = 8
    hidden: tuple[int, ...] = (64, 32)
    pretrain_epochs: int = 80
    patience: int = 10
    epochs: int = 40
    batch_size: int = 256
    lr: float = 1e-3
    alpha: float = 1.0
    tol: float = 1e-3
    update_interval: int = 1
    recon_weight: float = 0.1
    seed: int = 0
    max_train_rows: int | None = 6000
    num_threads: int = 1
    name: str = field(default="dec", init=False)
    kind: str = field(default="deep", init=False)
    n_clusters_: int = field(default=0, init=False, repr=False)

    def _scores(self, x: torch.Tensor) -> torch.Tensor:
        return _student_t(self.encoder_(x), self.mu_, self.alpha)

    def _embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder_(x)

    def fit(self, X: np.ndarray) -> DEC:
        X = _matrix(X)
        k = int(self.n_clusters)
        if k < 1 or len(X) < max(k, 2):
            raise ValueError(f"DEC needs 1 <= n_clusters <= rows and at least two rows; got n_clusters {k}, {len(X)} rows")
        if self.alpha <= 0 or self.batch_size < 2 or self.update_interval < 1:
            raise ValueError("DEC needs alpha > 0, batch_size >= 2 and update_interval >= 1")
        rng = np.random.default_rng(self.seed)
        train, held = _split_rows(len(X), self.max_train_rows, rng)
        with _torch_scope(self.seed, self.num_threads):
            self._pretrain(torch.as_tensor(X[train], dtype=torch.float32), torch.as_tensor(X[held], dtype=torch.float32))
            rows = np.sort(np.concatenate([train, held]))
            Xt = torch.as_tensor(X[rows], dtype=torch.float32)
            with torch.no_grad():
                codes = self.encoder_(Xt).double().numpy()
            kmeans = KMeans(n_clusters=k, n_init=10, random_state=self.seed).fit(codes)
            self.mu_ = nn.Parameter(torch.as_tensor(kmeans.cluster_centers_, dtype=torch.float32))
            self._self_train(Xt, torch.as_tensor(kmeans.labels_, dtype=torch.int64))
        self.fit_rows_ = len(rows)
        self.encoder_.eval()
        self.mu_.requires_grad_(False)
        self._finish(X)
        return self

    def _pretrain(self, Xt: torch.Tensor, Xv: torch.Tensor) -> None:
        d, hidden = Xt.shape[1], tuple(int(h) for h in self.hidden)
        self.encoder_ = _mlp(d, hidden, int(self.latent_dim), nn.ReLU)
        self.decoder_ = _mlp(int(self.latent_dim), hidden[::-1], d, nn.ReLU)
        autoencoder = nn.Sequential(self.encoder_, self.decoder_)
        optimiser = torch.optim.Adam(autoencoder.parameters(), lr=self.lr)
        watch = Xv if len(Xv) else Xt
        best, best_state, wait, epochs_run, stop = math.inf, None, 0, 0, "max_epochs"
        for _ in range(int(self.pretrain_epochs)):
            for index in _batches(len(Xt), int(self.batch_size)):
                xb = Xt[index]
                loss = F.mse_loss(autoencoder(xb), xb)
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
            epochs_run += 1
            with torch.no_grad():
                val = float(F.mse_loss(autoencoder(watch), watch))
            if val < best * (1 - 1e-4):
                best, best_state, wait = val, copy.deepcopy(autoencoder.state_dict()), 0
            else:
                wait += 1
                if wait >= int(self.patience):
                    stop = "early_stopping"
                    break
        if best_state is not None:
            autoencoder.load_state_dict(best_state)
        with torch.no_grad():
            self.pretrain_train_loss_ = float(F.mse_loss(autoencoder(Xt), Xt))
        self.pretrain_epochs_run_, self.pretrain_stop_, self.pretrain_val_loss_ = epochs_run, stop, best
        self.held_out_rows_ = len(Xv)

    def _self_train(self, Xt: torch.Tensor, labels: torch.Tensor) -> None:
        parameters = [*self.encoder_.parameters(), self.mu_]
        if self.recon_weight > 0:
            parameters += list(self.decoder_.parameters())
        optimiser = torch.optim.Adam(parameters, lr=self.lr)
        last, change, epochs_run, stop = labels, float("nan"), 0, "max_epochs"
        kl_sum = recon_sum = 0.0
        seen = 0
        for epoch in range(int(self.epochs)):
            if epoch % int(self.update_interval) == 0:
                with torch.no_grad():
                    q = _student_t(self.encoder_(Xt), self.mu_, self.alpha)
                    p = _target(q)
                    now = q.argmax(dim=1)
                if epoch > 0:
                    change = float((now != last).double().mean())
                    if change < self.tol:
                        stop = "tol"
                        break
                last = now
            kl_sum = recon_sum = 0.0
            seen = 0
            for index in _batches(len(Xt), int(self.batch_size)):
                xb = Xt[index]
                z = self.encoder_(xb)
                kl = F.kl_div(_student_t(z, self.mu_, self.alpha).clamp_min(1e-12).log(), p[index], reduction="batchmean")
                loss = kl
                if self.recon_weight > 0:
                    recon = F.mse_loss(self.decoder_(z), xb)
                    loss = kl + self.recon_weight * recon
                    recon_sum += recon.item() * len(index)
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                kl_sum += kl.item() * len(index)
                seen += len(index)
            epochs_run += 1
        self.epochs_run_, self.stop_reason_, self.last_label_change_ = epochs_run, stop, change
        self.final_kl_ = kl_sum / seen if seen else float("nan")
        self.final_recon_ = recon_sum / seen if seen and self.recon_weight > 0 else float("nan")

    def info(self) -> dict[str, Any]:
        out = {"method": self.name, "n_clusters": self.n_clusters, "latent_dim": self.latent_dim, "hidden": list(self.hidden),
               "pretrain_epochs": self.pretrain_epochs, "patience": self.patience, "epochs": self.epochs, "batch_size": self.batch_size,
               "lr": self.lr, "alpha": self.alpha, "tol": self.tol, "update_interval": self.update_interval,
               "recon_weight": self.recon_weight, "seed": self.seed, "max_train_rows": self.max_train_rows,
               "num_threads": self.num_threads}
        if self.centres_ is not None:
            out.update(n_clusters_found=self.n_clusters_, fit_rows=self.fit_rows_, held_out_rows=self.held_out_rows_,
                       pretrain_epochs_run=self.pretrain_epochs_run_, pretrain_stop=self.pretrain_stop_,
                       pretrain_val_loss=_g(self.pretrain_val_loss_), pretrain_train_loss=_g(self.pretrain_train_loss_),
                       epochs_run=self.epochs_run_, stop_reason=self.stop_reason_, last_label_change=_g(self.last_label_change_),
                       final_kl=_g(self.final_kl_), final_recon=_g(self.final_recon_), cluster_sizes=[int(s) for s in self.sizes_])
        return out


# ----------------------------------------------------------------------------------------------
# ClusterGAN
# ----------------------------------------------------------------------------------------------


@dataclass
class ClusterGAN(_DeepMixin):
    """ClusterGAN (Mukherjee, Asnani, Lin & Kannan 2019) with ``n_clusters`` clusters.

    The prior: z = (z_n, z_c), z_n ~ N(0, ``sigma``^2 I) of ``latent_dim`` dimensions and z_c a
    uniformly drawn one-hot vector of ``n_clusters``. Three fully connected nets (LeakyReLU 0.2,
    ``hidden`` layers each): the generator G(z_n, z_c) -> x (linear output: standardised inputs),
    the critic D(x) -> score and the encoder E(x) -> (z_n, logits of z_c). Training is WGAN-GP
    (gradient penalty ``gp_weight`` on random interpolates of real and generated rows): ``n_critic``
    critic steps per generator step, each critic step on a fresh batch of real training rows; G and
    E are updated together (one Adam optimiser, as in the paper) on
    -D(G(z)) + ``beta_n`` x ||E_n(G(z)) - z_n||^2 (mean) + ``beta_c`` x CE(E_c(G(z)), z_c).
    Adam for both, ``lr``, betas (0.5, 0.9); ``lr`` 2e-3 rather than the paper's 1e-4 because the
    time budget allows a few hundred generator steps, not the paper's tens of thousands. One epoch
    (the paper's iterations grouped) is ceil(training rows / ``batch_size``) generator steps, each
    after ``n_critic`` critic steps on fresh real batches (seeded permutations of the training rows,
    one after another), so per epoch the critic sees every real row ``n_critic`` times.

    Early stopping (the criterion): after every epoch the encoder assigns a held-out 10% of the
    training rows (argmax of its one-hot logits); training stops once fewer than ``tol`` of those
    rows changed cluster since the previous epoch for ``patience`` epochs in a row (the assignment
    has settled), not before ``min_epochs`` epochs and at most ``epochs``. ``stop_reason`` in
    ``info()``: "stable" or "max_epochs". (A settled assignment is not necessarily a good one: a
    GAN can hold a wrong mode split for a few epochs, which is why ``min_epochs`` and ``patience``
    are not smaller.)

    Segments: the argmax of E's one-hot logits on the real customers. ``latent(X)``: E's continuous
    code concatenated with the softmax of its one-hot logits, (rows, ``latent_dim`` + ``n_clusters``)
    (the cluster information of ClusterGAN's latent space is in the one-hot part, so the continuous
    code alone would not show it). Training rows: a seeded subsample of at most ``max_train_rows``.
    The uniform one-hot prior expects clusters of similar size; a much smaller group tends to be
    absorbed by a larger one (its cluster then goes empty and is dropped, ``n_clusters_`` < ``n_clusters``).
    Within this budget it recovers well-separated groups (blobs: ARI ~0.96-1.0) but not heavily
    overlapping ones (eight groups at cluster_std 7 in 20 dimensions: ARI ~0.3, where K-Means reaches
    0.95 and DEC ~0.94); longer training did not close the gap (2,250 generator steps: ARI ~0.4).
    """

    n_clusters: int = 5
    latent_dim: int = 8
    sigma: float = 0.1
    hidden: tuple[int, ...] = (64, 64)
    epochs: int = 30
    min_epochs: int = 15
    patience: int = 5
    tol: float = 0.01
    batch_size: int = 256
    lr: float = 2e-3
    beta_n: float = 10.0
    beta_c: float = 10.0
    gp_weight: float = 10.0
    n_critic: int = 5
    seed: int = 0
    max_train_rows: int | None = 4000
    num_threads: int = 1
    name: str = field(default="clustergan", init=False)
    kind: str = field(default="deep", init=False)
    n_clusters_: int = field(default=0, init=False, repr=False)

    def _scores(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder_(x)[:, int(self.latent_dim):]

    def _embed(self, x: torch.Tensor) -> torch.Tensor:
        out = self.encoder_(x)
        d = int(self.latent_dim)
        return torch.cat([out[:, :d], torch.softmax(out[:, d:], dim=1)], dim=1)

    def _prior(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        z_n = torch.randn(n, int(self.latent_dim)) * float(self.sigma)
        c = torch.randint(int(self.n_clusters), (n,))
        return z_n, c

    def _generate(self, z_n: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return self.generator_(torch.cat([z_n, F.one_hot(c, int(self.n_clusters)).float()], dim=1))

    def fit(self, X: np.ndarray) -> ClusterGAN:
        X = _matrix(X)
        k, d_lat = int(self.n_clusters), int(self.latent_dim)
        if k < 1 or len(X) < max(k, 2):
            raise ValueError(f"ClusterGAN needs 1 <= n_clusters <= rows and at least two rows; got n_clusters {k}, {len(X)} rows")
        if self.batch_size < 2 or self.n_critic < 1 or d_lat < 1:
            raise ValueError("ClusterGAN needs batch_size >= 2, n_critic >= 1 and latent_dim >= 1")
        rng = np.random.default_rng(self.seed)
        train, held = _split_rows(len(X), self.max_train_rows, rng)
        with _torch_scope(self.seed, self.num_threads):
            self._train(torch.as_tensor(X[train], dtype=torch.float32), torch.as_tensor(X[held], dtype=torch.float32))
        self.fit_rows_, self.held_out_rows_ = len(train), len(held)
        for net in (self.generator_, self.critic_, self.encoder_):
            net.eval()
        self._finish(X)
        return self

    def _train(self, Xt: torch.Tensor, Xv: torch.Tensor) -> None:
        d, k, d_lat = Xt.shape[1], int(self.n_clusters), int(self.latent_dim)
        hidden = tuple(int(h) for h in self.hidden)
        self.generator_ = _mlp(d_lat + k, hidden, d, _leaky)
        self.critic_ = _mlp(d, hidden, 1, _leaky)
        self.encoder_ = _mlp(d, hidden, d_lat + k, _leaky)
        opt_d = torch.optim.Adam(self.critic_.parameters(), lr=self.lr, betas=(0.5, 0.9))
        opt_ge = torch.optim.Adam([*self.generator_.parameters(), *self.encoder_.parameters()], lr=self.lr, betas=(0.5, 0.9))
        watch = Xv if len(Xv) else Xt
        last, calm, change, critic_steps, steps, epochs_run, stop = None, 0, float("nan"), 0, 0, 0, "max_epochs"
        d_sum = g_sum = n_sum = c_sum = 0.0
        d_seen = g_seen = 0
        real_batches = _cycle(len(Xt), int(self.batch_size))
        per_epoch = math.ceil(len(Xt) / int(self.batch_size))
        for _ in range(int(self.epochs)):
            d_sum = g_sum = n_sum = c_sum = 0.0
            d_seen = g_seen = 0
            for _ in range(per_epoch):
                for _ in range(int(self.n_critic)):
                    real = Xt[next(real_batches)]
                    m = len(real)
                    with torch.no_grad():
                        fake = self._generate(*self._prior(m))
                    eps = torch.rand(m, 1)
                    mixed = (eps * real + (1 - eps) * fake).requires_grad_(True)
                    grad = torch.autograd.grad(self.critic_(mixed).sum(), mixed, create_graph=True)[0]
                    penalty = ((grad.norm(2, dim=1) - 1) ** 2).mean()
                    loss_d = self.critic_(fake).mean() - self.critic_(real).mean() + self.gp_weight * penalty
                    opt_d.zero_grad()
                    loss_d.backward()
                    opt_d.step()
                    d_sum, d_seen, critic_steps = d_sum + loss_d.item(), d_seen + 1, critic_steps + 1
                z_n, c = self._prior(int(self.batch_size))
                fake = self._generate(z_n, c)
                code = self.encoder_(fake)
                adversarial = -self.critic_(fake).mean()
                loss_n = F.mse_loss(code[:, :d_lat], z_n)
                loss_c = F.cross_entropy(code[:, d_lat:], c)
                loss_ge = adversarial + self.beta_n * loss_n + self.beta_c * loss_c
                opt_ge.zero_grad()
                loss_ge.backward()
                opt_ge.step()
                g_sum, n_sum, c_sum, g_seen = g_sum + adversarial.item(), n_sum + loss_n.item(), c_sum + loss_c.item(), g_seen + 1
                steps += 1
            epochs_run += 1
            with torch.no_grad():
                now = self.encoder_(watch)[:, d_lat:].argmax(dim=1)
            if last is not None:
                change = float((now != last).double().mean())
                calm = calm + 1 if change < self.tol else 0
            last = now
            if epochs_run >= int(self.min_epochs) and calm >= int(self.patience):
                stop = "stable"
                break
        self.epochs_run_, self.generator_steps_, self.critic_steps_ = epochs_run, steps, critic_steps
        self.stop_reason_, self.last_label_change_ = stop, change
        self.final_critic_loss_ = d_sum / d_seen if d_seen else float("nan")
        self.final_generator_loss_ = g_sum / g_seen if g_seen else float("nan")
        self.final_zn_loss_ = n_sum / g_seen if g_seen else float("nan")
        self.final_zc_loss_ = c_sum / g_seen if g_seen else float("nan")

    def info(self) -> dict[str, Any]:
        out = {"method": self.name, "n_clusters": self.n_clusters, "latent_dim": self.latent_dim, "sigma": self.sigma,
               "hidden": list(self.hidden), "epochs": self.epochs, "min_epochs": self.min_epochs, "patience": self.patience,
               "tol": self.tol, "batch_size": self.batch_size, "lr": self.lr, "beta_n": self.beta_n, "beta_c": self.beta_c,
               "gp_weight": self.gp_weight, "n_critic": self.n_critic, "seed": self.seed, "max_train_rows": self.max_train_rows,
               "num_threads": self.num_threads}
        if self.centres_ is not None:
            out.update(n_clusters_found=self.n_clusters_, fit_rows=self.fit_rows_, held_out_rows=self.held_out_rows_,
                       epochs_run=self.epochs_run_, generator_steps=self.generator_steps_, critic_steps=self.critic_steps_,
                       stop_reason=self.stop_reason_, last_label_change=_g(self.last_label_change_), final_critic_loss=_g(self.final_critic_loss_),
                       final_generator_loss=_g(self.final_generator_loss_), final_zn_loss=_g(self.final_zn_loss_),
                       final_zc_loss=_g(self.final_zc_loss_), cluster_sizes=[int(s) for s in self.sizes_])
        return out
