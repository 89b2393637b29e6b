"""Customer2Vec: a PV-DBOW document vector per customer, learnt from the customer's token bag (PyTorch, CPU).

PV-DBOW (Le and Mikolov 2014): the customer's vector ``d_c`` predicts the tokens of its bag through
output token vectors ``w_t`` with negative sampling, ``-log s(d_c . w_t) - sum_k log s(-d_c . w_k)``,
the negatives drawn from the unigram distribution to the 3/4 power (Mikolov et al. 2013). Pairs
(customer, token) are sampled in proportion to the token's count in the bag, with frequent tokens
subsampled; a held-out share of each customer's tokens gives the early-stopping loss.

A customer not seen at training gets a vector by **inference**: the token vectors frozen, a fresh
vector fitted to its bag by a fixed number of full-batch gradient steps from zero (deterministic:
same bag, same vector), so the nightly run scores new customers without retraining.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from customer_intel.embeddings.tokens import TokenBags


@dataclass
class Customer2VecConfig:
    dim: int = 64
    negatives: int = 5
    epochs: int = 30
    batch_size: int = 4096
    learning_rate: float = 0.002
    max_tokens_per_customer: int = 400  # occurrences per customer and epoch (more are subsampled)
    holdout_share: float = 0.1
    patience: int = 3
    seed: int = 0
    infer_steps: int = 200
    infer_learning_rate: float = 0.1


@dataclass
class Customer2Vec:
    """The trained model: customer vectors (training customers), token output vectors, and what inference needs."""

    config: Customer2VecConfig
    vocabulary: tuple[str, ...]
    customer_ids: np.ndarray
    vectors: np.ndarray  # n x dim
    token_vectors: np.ndarray  # V x dim (output side)
    negative_table: np.ndarray  # token sampling probabilities (unigram^0.75)
    history: list[dict] = field(default_factory=list)

    def infer(self, bags: TokenBags, chunk: int = 12_500) -> np.ndarray:
        """Vectors of the customers in ``bags`` with the token vectors frozen (deterministic; see the module docstring).
        Customers with an empty bag (no known token) get a zero vector. Rows go ``chunk`` at a time: memory stays bounded,
        and a chunk's working arrays (a few MB) stay in the cache across the Adam steps (1M rows: 12,500 at a time is
        ~18% faster than 100,000)."""
        bags = bags.restricted(self.vocabulary) if bags.vocabulary != self.vocabulary else bags
        out = np.zeros((len(bags), self.config.dim), dtype=np.float32)
        for start in range(0, len(bags), chunk):
            out[start:start + chunk] = self._infer_rows(bags, start, min(start + chunk, len(bags)))
        return out

    def _infer_rows(self, bags: TokenBags, start: int, stop: int) -> np.ndarray:
        """Adam on each row's vector, the gradient of the exact expected loss written out (no autograd graph).

        Per row ``i`` the loss is ``-(1/T_i) sum_t C_it log s(l_it) - k sum_t P_t log s(-l_it)`` with
        ``l = D W'``, so ``dL/dl = s(l) (C/T + k P) - C/T`` and ``dL/dD = (dL/dl) W``; the update is
        torch's Adam (betas 0.9 and 0.999, eps 1e-8, bias-corrected) step for step, in place. Rows
        are independent (Adam is elementwise and the loss a sum over rows), so a row's vector does
        not depend on the rows scored with it (beyond the float rounding of the matrix products).
        """
        import torch

        W = torch.from_numpy(self.token_vectors.astype(np.float32))
        n, V = stop - start, len(self.vocabulary)
        counts = np.zeros((n, V), dtype=np.float32)
        lo, hi = bags.indptr[start], bags.indptr[stop]
        rows = np.repeat(np.arange(n), np.diff(bags.indptr[start:stop + 1]))
        counts[rows, bags.tokens[lo:hi]] = bags.counts[lo:hi]
        C = torch.from_numpy(counts)
        total = C.sum(dim=1, keepdim=True)
        positive = C / total.clamp(min=1.0)  # C/T
        weight = positive + float(self.config.negatives) * torch.from_numpy(self.negative_table.astype(np.float32))[None, :]
        D = torch.zeros((n, W.shape[1]))
        m, v = torch.zeros_like(D), torch.zeros_like(D)
        lr, beta1, beta2, eps = self.config.infer_learning_rate, 0.9, 0.999, 1e-8
        logits, grad, denom = torch.empty((n, V)), torch.empty_like(D), torch.empty_like(D)
        with torch.no_grad():
            for step in range(1, self.config.infer_steps + 1):
                torch.mm(D, W.T, out=logits)
                logits.sigmoid_().mul_(weight).sub_(positive)  # dL/dl
                torch.mm(logits, W, out=grad)
                m.lerp_(grad, 1 - beta1)
                v.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                torch.sqrt(v, out=denom).div_((1 - beta2 ** step) ** 0.5).add_(eps)
                D.addcdiv_(m, denom, value=-lr / (1 - beta1 ** step))
        vectors = D.numpy().astype(np.float32)
        vectors[total.squeeze(1).numpy() == 0] = 0.0
        return vectors


def _pairs(bags: TokenBags, rng: np.random.Generator, cap: int = 400) -> tuple[np.ndarray, np.ndarray]:
    """(customer index, token id) per token occurrence, at most ``cap`` occurrences per customer (the rest subsampled)."""
    lengths = np.diff(bags.indptr)
    owner = np.repeat(np.arange(len(bags)), lengths)
    rows_customer = np.repeat(owner, bags.counts)
    rows_token = np.repeat(bags.tokens, bags.counts)
    per_customer = np.bincount(rows_customer, minlength=len(bags))
    keep_p = np.minimum(1.0, cap / np.maximum(per_customer, 1))[rows_customer]
    keep = rng.random(len(rows_customer)) < keep_p
    return rows_customer[keep], rows_token[keep]


def train_customer2vec(bags: TokenBags, config: Customer2VecConfig | None = None, log=print) -> Customer2Vec:
    """Fit PV-DBOW on ``bags`` (seeded, CPU); stop when the held-out tokens' loss has not improved for ``patience`` epochs."""
    import torch

    config = config or Customer2VecConfig()
    rng = np.random.default_rng(config.seed)
    torch.manual_seed(config.seed)
    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    customers, tokens = _pairs(bags, rng, config.max_tokens_per_customer)
    held = rng.random(len(customers)) < config.holdout_share
    train_c, train_t = torch.from_numpy(customers[~held]), torch.from_numpy(tokens[~held])
    hold_c, hold_t = torch.from_numpy(customers[held]), torch.from_numpy(tokens[held])
    V = len(bags.vocabulary)
    freq = np.bincount(tokens, minlength=V).astype(np.float64)
    table = freq ** 0.75
    table = table / table.sum()
    sampler = torch.from_numpy(table.astype(np.float32))
    D = torch.nn.Embedding(len(bags), config.dim)
    W = torch.nn.Embedding(V, config.dim)
    torch.nn.init.uniform_(D.weight, -0.5 / config.dim, 0.5 / config.dim)
    torch.nn.init.zeros_(W.weight)
    optimiser = torch.optim.Adam(list(D.parameters()) + list(W.parameters()), lr=config.learning_rate)
    generator = torch.Generator().manual_seed(config.seed)

    def loss_of(c, t, negatives):
        d = D(c)
        positive = torch.nn.functional.logsigmoid((d * W(t)).sum(dim=1))
        negative = torch.nn.functional.logsigmoid(-(d[:, None, :] * W(negatives)).sum(dim=2)).sum(dim=1)
        return -(positive + negative).mean()

    hold_negatives = torch.multinomial(sampler, len(hold_c) * config.negatives, replacement=True, generator=generator).view(-1, config.negatives)
    best, best_state, stale, history = np.inf, None, 0, []
    for epoch in range(config.epochs):
        order = torch.randperm(len(train_c), generator=generator)
        total, batches = 0.0, 0
        for start in range(0, len(order), config.batch_size):
            idx = order[start:start + config.batch_size]
            negatives = torch.multinomial(sampler, len(idx) * config.negatives, replacement=True, generator=generator).view(-1, config.negatives)
            optimiser.zero_grad()
            loss = loss_of(train_c[idx], train_t[idx], negatives)
            loss.backward()
            optimiser.step()
            total, batches = total + float(loss.detach()), batches + 1
        with torch.no_grad():
            held_loss = float(loss_of(hold_c, hold_t, hold_negatives)) if len(hold_c) else total / max(batches, 1)
        history.append({"epoch": epoch + 1, "train_loss": total / max(batches, 1), "holdout_loss": held_loss})
        log(f"customer2vec epoch {epoch + 1}: train {total / max(batches, 1):.4f}, held-out {held_loss:.4f}")
        if held_loss < best - 1e-4:
            best, stale = held_loss, 0
            best_state = (D.weight.detach().clone(), W.weight.detach().clone())
        else:
            stale += 1
            if stale >= config.patience:
                break
    vectors, token_vectors = best_state if best_state is not None else (D.weight.detach(), W.weight.detach())
    return Customer2Vec(config, bags.vocabulary, bags.customer_ids, vectors.numpy().astype(np.float32), token_vectors.numpy().astype(np.float32),
                        table, history)
