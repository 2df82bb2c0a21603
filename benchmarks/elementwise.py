"""Where an evaluation's time goes outside the matrix products: the elementwise kernels.

Times PyTorch's elementwise kernels on one thread, in nanoseconds an element, over the 2048 x
784 logits that one step of ``mnist_loglik.py`` makes (16 rows x 128 draws), and three ways to
sum the Bernoulli log-density of binary x over those logits: vaekit's one softplus pass,
-softplus((1 - 2x) l); x·l by ``einsum`` less the softplus sum; and x·l less the sum of
relu(l) and the logs of products of 16 factors 1 + exp(-|l|) (one log per 16 elements).

Run: .venv/bin/python benchmarks/elementwise.py
"""

import time

import torch
import torch.nn.functional as F

ROWS, DRAWS, PIXELS, GROUP = 16, 128, 784, 16


def per_element_ns(work, elements: int, repeats: int = 30) -> float:
    """The best of three timings of ``repeats`` calls, in nanoseconds an element."""
    work()
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(repeats):
            work()
        best = min(best, (time.perf_counter() - start) / repeats)
    return best / elements * 1e9


def grouped_softplus_sum(logits: torch.Tensor) -> torch.Tensor:
    """sum_d softplus(l_d) as sum relu(l) + sum log prod_group (1 + exp(-|l|))."""
    factors = torch.exp(-logits.abs()).add_(1).unflatten(-1, (-1, GROUP)).prod(-1)
    return logits.clamp(min=0).sum(-1) + factors.log_().sum(-1)


def main() -> None:
    torch.set_num_threads(1)
    generator = torch.Generator().manual_seed(0)
    logits = 3 * torch.randn(DRAWS, ROWS, PIXELS, generator=generator)
    x = (torch.rand(ROWS, PIXELS, generator=generator) < 0.2).float()
    flat, out, n = logits.reshape(-1), torch.empty(logits.numel()), logits.numel()
    kernels = {
        "add": lambda: torch.add(flat, 1, out=out),
        "exp": lambda: torch.exp(flat, out=out),
        "log": lambda: torch.log(flat.abs(), out=out),
        "log1p": lambda: torch.log1p(flat.abs(), out=out),
        "tanh": lambda: torch.tanh(flat, out=out),
        "sigmoid": lambda: torch.sigmoid(flat, out=out),
        "softplus": lambda: F.softplus(flat),
    }
    print(f"torch {torch.__version__}, {torch.backends.cpu.get_cpu_capability()}, one thread")
    for name, work in kernels.items():
        print(f"{name:9s} {per_element_ns(work, n):6.2f} ns an element")
    forms = {
        "softplus pass": lambda: -F.softplus(logits * (1 - 2 * x)).sum(-1),
        "einsum, softplus sum": lambda: (
            torch.einsum("knd,nd->kn", logits, x) - F.softplus(logits).sum(-1)
        ),
        "einsum, grouped products": lambda: (
            torch.einsum("knd,nd->kn", logits, x) - grouped_softplus_sum(logits)
        ),
    }
    reference = -F.softplus(logits.double() * (1 - 2 * x.double())).sum(-1)
    print("\nthe Bernoulli log-density summed over the pixels:")
    for name, work in forms.items():
        error = (work().double() - reference).abs().max().item()
        print(f"{name:26s} {per_element_ns(work, n):6.2f} ns an element; largest error {error:.1e}")


if __name__ == "__main__":
    main()
