"""BG/NBD maximum likelihood with an analytic gradient and Hessian, vectorised for millions of customers.

The log-likelihood is eq. 6 of Fader, Hardie & Lee (2005a), the same function lifetimes
optimises (through autograd). What makes it fast:

* customers are reduced to weighted distinct (x, t_x, T) rows by hashing: ``pd.factorize``
  per column, the three codes packed into one int64 key, one sort of the keys -- no groupby;
* every term that depends only on x (gammaln/digamma/trigamma of r + x, b + x, a + b + x) is
  computed once per distinct x, and log(alpha + T), log(alpha + t_x) once per distinct T and
  t_x, then gathered by each row's codes -- day-level histories have a few hundred distinct
  values of each. Sums over rows of an x-only factor times a per-row term become per-x sums
  (rows are sorted by x, so ``np.add.reduceat``), and sums of (r + x) f(T) become sums over
  the T table against precomputed customer totals;
* the per-row work is ~25 numpy passes: logaddexp(alive, dropped) is alive + softplus(-d)
  with d = alive - dropped, computed as log1p(exp(-|d|)) - min(d, 0) (``np.logaddexp`` is
  scalar code, ~30x slower), and the weight of the alive branch, sigmoid(d), is
  exp(-softplus(-d)). Long dot products avoid BLAS (see ``_wsum``);
* few passes: with more than ``WARM_START_CUSTOMERS`` distinct rows, L-BFGS-B first runs on a
  sample of that many customers (a warm start within sampling error of the answer), then Newton
  steps with the analytic Hessian on all rows converge quadratically -- about 3 evaluations
  instead of ~20 L-BFGS-B ones. Newton uses an Armijo line search; if the Hessian is not
  positive definite or the search stalls, L-BFGS-B on all rows from several starts takes over
  (the previous method), and the result must pass the same gradient check either way.

``fit_bgnbd`` takes one row per customer, or distinct rows with weights (customers per row);
rows are deduplicated here in both cases.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from scipy.linalg import LinAlgError, cho_factor, cho_solve
from scipy.optimize import minimize
from scipy.special import betaln, digamma, gammaln, polygamma

PARAMS = ("r", "alpha", "a", "b")
GRADIENT_TOLERANCE = 1e-4  # |gradient| of the mean negative log-likelihood in log-parameters
WARM_START_CUSTOMERS = 50_000  # above this many distinct rows, L-BFGS-B first runs on a sample of this many customers
NEWTON_STEP_TOLERANCE = 1e-7  # Newton has converged when no log-parameter moves by more than this
NEWTON_MAX_STEPS = 25
KEY_LIMIT = 2**62  # distinct (x, t_x, T) combinations that one int64 key per row can encode
STARTS = (np.full(4, 0.1), np.zeros(4), np.array([0.0, 0.0, -1.0, 1.0]))  # log-parameters


def _trigamma(z):
    return polygamma(1, z)


def _wsum(w, v) -> float:
    """sum(w * v) for long 1-D arrays, without BLAS: np.dot hands these to a threaded BLAS that stalls when a core is busy."""
    return float(np.einsum("i,i->", w, v))


def _floats(values) -> np.ndarray:
    """A flat float array; pandas objects through to_numpy (np.asarray probes a Series' index for array attributes)."""
    if isinstance(values, (pd.Series, pd.Index)):
        return values.to_numpy(dtype=float)
    return np.asarray(values, dtype=float).ravel()


def _sum_runs(values, runs, run_index, size) -> np.ndarray:
    """Sums of ``values`` over runs of equal codes (run starts, the code of each run) as an array by code.

    np.add.reduceat reads the runs sequentially; np.bincount on sorted codes is ~20x slower,
    as its adds into one bin wait on each other.
    """
    out = np.zeros(size)
    out[run_index] = np.add.reduceat(values, runs)
    return out


@dataclass(frozen=True)
class _Rows:
    """Weighted distinct (x, t_x, T) rows: per-column tables of distinct values and each row's codes into them.

    Also the customer totals per table entry that turn sums over rows of one-column factors
    into sums over the table (``w_x`` = customers per distinct x, ``wx_T`` = their purchases per T, ...).
    """

    x: np.ndarray  # distinct values of each column (any order)
    t_x: np.ndarray
    T: np.ndarray
    ix: np.ndarray  # per row: index into x, t_x, T
    itx: np.ndarray
    iT: np.ndarray
    w: np.ndarray  # customers per row
    w_x: np.ndarray  # customers per distinct x
    w_tx: np.ndarray  # customers per distinct t_x, and the sum of their x
    wx_tx: np.ndarray
    w_T: np.ndarray  # customers per distinct T, and the sum of their x
    wx_T: np.ndarray
    x_runs: np.ndarray  # rows are sorted by ix: where each run of one x starts, and that x's index
    x_of_run: np.ndarray

    @classmethod
    def build(cls, x, t_x, T, weights=None) -> _Rows:
        """Distinct rows of per-customer (or already weighted) columns, by hashing: O(n) plus one int64 sort."""
        columns = [_floats(c) for c in (x, t_x, T)]
        if len({len(c) for c in columns}) != 1 or (weights is not None and len(np.ravel(weights)) != len(columns[0])):
            raise ValueError("x, t_x, T (and weights) must have the same length")
        factorized = [pd.factorize(c) for c in columns]  # NaN gets code -1
        codes = [code for code, _ in factorized]
        tables = [np.asarray(table, dtype=float) for _, table in factorized]
        if any(code.size and code.min() < 0 for code in codes) or not all(np.isfinite(t).all() for t in tables):
            raise ValueError("x, t_x and T must be finite")
        sizes = [len(t) for t in tables]
        if math.prod(sizes) < KEY_LIMIT:  # one int64 key per row; its digits are the column codes
            key = (codes[0] * sizes[1] + codes[1]) * sizes[2] + codes[2]
            if weights is None:
                keys, counts = np.unique(key, return_counts=True)  # a sort, no argsort
                w = counts.astype(float)
            else:
                keys, inverse = np.unique(key, return_inverse=True)
                w = np.bincount(inverse, weights=_floats(weights), minlength=len(keys))
            keys, iT = np.divmod(keys, sizes[2])
            ix, itx = np.divmod(keys, sizes[1])
        else:  # too many distinct values for one int64 key (continuous times): group the code triples
            triples, inverse = np.unique(np.column_stack(codes), axis=0, return_inverse=True)
            w = np.bincount(inverse.ravel(), weights=None if weights is None else _floats(weights))
            ix, itx, iT = triples.T
        return cls.from_codes(*tables, ix, itx, iT, w.astype(float))

    @classmethod
    def from_codes(cls, x, t_x, T, ix, itx, iT, w) -> _Rows:
        """Rows given as codes into the tables (sorted by ``ix`` here if they are not already)."""
        if np.any(ix[1:] < ix[:-1]):
            order = np.argsort(ix, kind="stable")
            ix, itx, iT, w = ix[order], itx[order], iT[order], w[order]
        x_runs = np.flatnonzero(np.r_[True, ix[1:] != ix[:-1]]) if len(ix) else np.zeros(0, dtype=np.intp)
        x_of_run = ix[x_runs]
        purchases = w * x[ix]
        return cls(x, t_x, T, ix, itx, iT, w, _sum_runs(w, x_runs, x_of_run, len(x)),
                   np.bincount(itx, weights=w, minlength=len(t_x)), np.bincount(itx, weights=purchases, minlength=len(t_x)),
                   np.bincount(iT, weights=w, minlength=len(T)), np.bincount(iT, weights=purchases, minlength=len(T)),
                   x_runs, x_of_run)

    def per_x(self, values: np.ndarray) -> np.ndarray:
        """Sum of a per-row quantity over the rows of each distinct x."""
        return _sum_runs(values, self.x_runs, self.x_of_run, len(self.x))

    def __len__(self) -> int:
        return len(self.w)

    def scaled(self, scale: float) -> _Rows:
        """The same rows with time multiplied by ``scale`` (only the tables change)."""
        return replace(self, t_x=self.t_x * scale, T=self.T * scale)

    def sample(self, n_customers: int, seed: int = 0) -> _Rows:
        """About ``n_customers`` customers as weighted rows: a systematic sample, each row in proportion to its weight."""
        cumulative = np.cumsum(self.w)
        step = cumulative[-1] / n_customers
        points = (np.random.default_rng(seed).random() + np.arange(n_customers)) * step
        drawn = np.minimum(np.searchsorted(cumulative, points, side="right"), len(self) - 1)
        picked, counts = np.unique(drawn, return_counts=True)
        return _Rows.from_codes(self.x, self.t_x, self.T, self.ix[picked], self.itx[picked], self.iT[picked], counts.astype(float))

    def validate(self) -> None:
        x, t_x, T = self.x[self.ix], self.t_x[self.itx], self.T[self.iT]
        if np.any(t_x > T) or np.any(x < 0) or np.any((x == 0) & (t_x != 0)) or np.any(t_x < 0):
            raise ValueError("BG/NBD needs 0 <= t_x <= T, x >= 0, and t_x = 0 when x = 0")


def _row_sums(rows: _Rows, k_x, d_x, log_T, log_tx, inv_T, inv_tx, hessian: bool):
    """The sums over rows that ``_nll`` needs: a vector of totals and a matrix of per-x totals.

    d_x = alive - dropped without the time terms, per distinct x; the rest are per-table values.
    """
    ix, itx, iT, w = rows.ix, rows.itx, rows.iT, rows.w
    k = k_x[ix]
    dlog = log_T[iT]
    dlog -= log_tx[itx]  # log(alpha + T) - log(alpha + t_x)
    d = d_x[ix]
    d -= k * dlog  # alive - dropped; +inf when x = 0
    e = np.abs(d)
    np.negative(e, out=e)
    np.exp(e, out=e)
    softplus = np.log1p(e)
    softplus -= np.minimum(d, 0.0)  # log(1 + exp(-d)) = logaddexp(alive, dropped) - alive
    p = np.negative(softplus, out=e)
    np.exp(p, out=p)  # sigmoid(d) = exp(-softplus): the weight of the alive branch
    wp = w * p
    it = inv_tx[itx]
    dinv = inv_T[iT]
    dinv -= it  # 1/(alpha + T) - 1/(alpha + t_x)
    kdinv = k * dinv
    wp_kdinv = wp * kdinv
    sums = [_wsum(w, softplus), _wsum(wp, dlog), wp_kdinv.sum()]
    per_x = [rows.per_x(wp)]
    if hessian:
        ws = wp * (1.0 - p)  # w p (1 - p): the weight of delta delta^T
        ws_dlog = ws * dlog
        ws_kdinv = ws * kdinv
        it += it
        it += dinv  # 1/(alpha + T) + 1/(alpha + t_x): times dinv, 1/(alpha + T)^2 - 1/(alpha + t_x)^2
        sums += [_wsum(ws_dlog, dlog), _wsum(wp, dinv), _wsum(ws_dlog, kdinv), _wsum(wp_kdinv, it), _wsum(ws_kdinv, kdinv)]
        per_x += [rows.per_x(ws), rows.per_x(ws_dlog), rows.per_x(ws_kdinv)]
    return np.array(sums), np.array(per_x)


def _nll(theta, rows: _Rows, penalizer: float, hessian: bool = False):
    """Mean negative log-likelihood (+ L2 penalty) in log-parameters, its gradient and optionally Hessian.

    Per row, ll = base(x) + logaddexp(alive, dropped) with
    alive = B_alive(x) - (r + x) log(alpha + T) and dropped = B_drop(x) - (r + x) log(alpha + t_x)
    (B are the beta-function ratios; dropped = -inf when x = 0). With d = alive - dropped,
    logaddexp = alive + log1p(exp(-|d|)) - min(d, 0), and with p = sigmoid(d) (the weight of the
    alive branch) and delta = grad(alive) - grad(dropped), its derivatives are
    p grad(alive) + (1 - p) grad(dropped) and p H(alive) + (1 - p) H(dropped) + p (1 - p) delta delta^T.
    Derivatives are taken in the natural parameters (r, alpha, a, b), then chained to
    theta = log(parameters).
    """
    params = np.exp(theta)
    r, alpha, a, b = params
    xv = rows.x
    total = rows.w_x.sum()
    has_repeat = xv > 0
    xr = np.where(has_repeat, xv, 1.0)  # x where there is a dropped branch, a harmless 1 elsewhere
    # per distinct x
    k_x = r + xv
    alive_x = betaln(a, b + xv) - betaln(a, b)
    drop_x = np.where(has_repeat, betaln(a + 1, b + xr - 1) - betaln(a, b), -np.inf)
    psi_ab, psi_abx = digamma(a + b), digamma(a + b + xv)
    ca_x = psi_ab - psi_abx  # d alive / d a; d dropped / d a = ca_x + 1/a
    cb_x = digamma(b + xv) - psi_abx - digamma(b) + psi_ab  # d alive / d b
    v_x = np.where(has_repeat, 1.0 / (b + xr - 1), 0.0)  # d alive / d b - d dropped / d b = psi(b+x) - psi(b+x-1)
    # per distinct T and t_x; sums over rows of (r + x) f(T) are sums over T of f(T) (r w_T + wx_T)
    log_T, log_tx = np.log(alpha + rows.T), np.log(alpha + rows.t_x)
    inv_T, inv_tx = 1.0 / (alpha + rows.T), 1.0 / (alpha + rows.t_x)
    k_T, k_tx = r * rows.w_T + rows.wx_T, r * rows.w_tx + rows.wx_tx

    sums, per_x = _row_sums(rows, k_x, alive_x - drop_x, log_T, log_tx, inv_T, inv_tx, hessian)
    sum_softplus, wp_dlog, wp_kdinv = sums[:3]
    p_x = per_x[0]
    ll = np.dot(rows.w_x, gammaln(k_x) - gammaln(r) + r * np.log(alpha) + alive_x) - np.dot(k_T, log_T) + sum_softplus
    q_x = rows.w_x - p_x
    grad = np.array([
        np.dot(rows.w_x, digamma(k_x)) - total * (digamma(r) - np.log(alpha)) - np.dot(rows.w_tx, log_tx) - wp_dlog,
        total * r / alpha - np.dot(k_tx, inv_tx) - wp_kdinv,
        np.dot(rows.w_x, ca_x) + q_x.sum() / a,
        np.dot(p_x, cb_x) + np.dot(q_x, cb_x - v_x),
    ])
    value = -ll / total + penalizer * np.sum(params**2)
    gradient = -grad / total * params + 2 * penalizer * params**2  # chain rule to log-parameters
    if not hessian:
        return value, gradient

    ws_dlog_dlog, wp_dinv, ws_dlog_kdinv, wp_kdinv_sum_inv, ws_kdinv_kdinv = sums[3:]
    s_x, s_dlog_x, s_kdinv_x = per_x[1:]
    tri_ab, tri_abx = _trigamma(a + b), _trigamma(a + b + xv)
    haa_x = tri_ab - tri_abx  # d2 alive / da2 = d2 alive / da db = d2 dropped / da db; d2 dropped / da2 = haa_x - 1/a^2
    hbb_alive = _trigamma(b + xv) - tri_abx - _trigamma(b) + tri_ab
    hbb_drop = np.where(has_repeat, _trigamma(b + xr - 1) - tri_abx - _trigamma(b) + tri_ab, 0.0)
    sum_haa = np.dot(rows.w_x, haa_x)
    h = np.empty((4, 4))
    h[0, 0] = np.dot(rows.w_x, _trigamma(k_x)) - total * _trigamma(r) + ws_dlog_dlog
    h[0, 1] = total / alpha - np.dot(rows.w_tx, inv_tx) - wp_dinv + ws_dlog_kdinv
    h[1, 1] = -total * r / alpha**2 + np.dot(k_tx, inv_tx**2) + wp_kdinv_sum_inv + ws_kdinv_kdinv
    h[0, 2] = s_dlog_x.sum() / a
    h[0, 3] = -np.dot(v_x, s_dlog_x)
    h[1, 2] = s_kdinv_x.sum() / a
    h[1, 3] = -np.dot(v_x, s_kdinv_x)
    h[2, 2] = sum_haa - q_x.sum() / a**2 + s_x.sum() / a**2
    h[2, 3] = sum_haa - np.dot(v_x, s_x) / a
    h[3, 3] = np.dot(p_x, hbb_alive) + np.dot(q_x, hbb_drop) + np.dot(v_x**2, s_x)
    h = np.triu(h) + np.triu(h, 1).T
    # chain rule: d2/dtheta2 = diag(params) H diag(params) + diag(grad * params)
    hess = -(h * np.outer(params, params) + np.diag(grad * params)) / total + np.diag(4 * penalizer * params**2)
    return value, gradient, hess


def _lbfgsb(theta, rows: _Rows, penalizer: float, tol: float):
    return minimize(_nll, theta, args=(rows, penalizer), jac=True, method="L-BFGS-B",
                    options={"ftol": tol, "gtol": 1e-8, "maxiter": 1000})


def _newton(theta, rows: _Rows, penalizer: float):
    """Newton with an Armijo backtracking line search; None when the Hessian is indefinite or the search stalls."""
    value, gradient, hess = _nll(theta, rows, penalizer, hessian=True)
    for _ in range(NEWTON_MAX_STEPS):
        if not np.all(np.isfinite(hess)):
            return None
        try:
            step = -cho_solve(cho_factor(hess), gradient)
        except LinAlgError:
            return None
        if np.max(np.abs(step)) < NEWTON_STEP_TOLERANCE:
            return theta, value, gradient
        slope = np.dot(gradient, step)
        # the likelihood is a sum over ~10^6 rows: allow for its rounding when the predicted decrease is tiny
        noise = 1e-13 * (1.0 + abs(value))
        for t in (1.0, 0.5, 0.25, 0.125, 0.0625):
            trial = theta + t * step
            trial_value, trial_gradient, trial_hess = _nll(trial, rows, penalizer, hessian=True)
            if trial_value <= value + 1e-4 * t * slope + noise:
                break
        else:
            return None
        theta, value, gradient, hess = trial, trial_value, trial_gradient, trial_hess
    return None


def _multistart(rows: _Rows, penalizer: float, tol: float, starts):
    """L-BFGS-B from each start in turn until one converges; the best result (None if none is finite)."""
    best = None
    for start in starts:
        result = _lbfgsb(start, rows, penalizer, tol)
        if np.isfinite(result.fun) and (best is None or result.fun < best.fun):
            best = result
        if result.success and np.linalg.norm(result.jac) < GRADIENT_TOLERANCE:
            break  # another start only costs time once this one has converged
    return best


def _maximise(rows: _Rows, penalizer: float, tol: float):
    """(log-parameters, mean negative log-likelihood, gradient) at the optimum, or None."""
    sample = rows.sample(WARM_START_CUSTOMERS) if len(rows) > WARM_START_CUSTOMERS else rows
    warm = _multistart(sample, penalizer, tol, STARTS)
    if warm is not None and (found := _newton(warm.x, rows, penalizer)) is not None:
        return found
    # Newton failed from the warm start (indefinite Hessian, stalled search): L-BFGS-B on all rows
    best = _multistart(rows, penalizer, tol, STARTS if warm is None else (warm.x, *STARTS))
    if best is None:
        return None
    polished = _newton(best.x, rows, penalizer)  # L-BFGS-B stops early on flat likelihoods; Newton finishes
    return polished if polished is not None else (best.x, best.fun, best.jac)


def fit_bgnbd(x, t_x, T, weights=None, penalizer_coef: float = 0.0, tol: float = 1e-10) -> dict[str, float]:
    """Maximum-likelihood BG/NBD parameters (time in the units of ``t_x`` and ``T``).

    ``x, t_x, T`` hold one row per customer, or distinct rows with ``weights`` (customers per row).
    ``tol`` is L-BFGS-B's ftol (warm start and fallback). Raises ValueError on impossible
    histories and RuntimeError unless the gradient at the answer is below GRADIENT_TOLERANCE.
    """
    rows = _Rows.build(x, t_x, T, weights)
    rows.validate()
    scale = 10.0 / rows.T.max()  # as lifetimes does: well-conditioned alpha, then undone below
    with np.errstate(all="ignore"):
        found = _maximise(rows.scaled(scale), penalizer_coef, tol)
    if found is None or not np.linalg.norm(found[2]) < GRADIENT_TOLERANCE:
        detail = "no start gave a finite likelihood" if found is None else f"|gradient| = {np.linalg.norm(found[2]):.2g}"
        raise RuntimeError(f"BG/NBD did not converge ({detail} > {GRADIENT_TOLERANCE:g})")
    r, alpha, a, b = np.exp(found[0])
    return {"r": float(r), "alpha": float(alpha / scale), "a": float(a), "b": float(b)}
