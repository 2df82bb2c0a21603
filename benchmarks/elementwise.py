"""Where an evaluation's time goes outside the matrix products: the elementwise kernels.

Times PyTorch's elementwise kernels on one thread, in nanoseconds an element, over the 2048 x
784 logits that one step of ``mnist_loglik.py`` makes (16 rows x 128 draws), and two ways to
sum the Bernoulli log-density of binary x over those logits: the softplus pass,
-softplus((1 - 2x) l), which training and the float64 reference use; and the product form of
a float32 estimate (``vaekit.model.distributions.product_log_prob``: the relu's sum less the
logarithms of products of 112 sigmoids, one logarithm per 112 elements).

Run: .venv/bin/python benchmarks/elementwise.py
"""

import time

import torch
import torch.nn.functional as F

from vaekit.model.distributions import product_log_prob

ROWS, DRAWS, PIXELS = 16, 128, 784


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
        "product form": lambda: product_log_prob(x, logits),
    }
    reference = -F.softplus(logits.double() * (1 - 2 * x.double())).sum(-1)
    print("\nthe Bernoulli log-density summed over the pixels:")
    for name, work in forms.items():
        error = work().double() - reference
        print(
            f"{name:14s} {per_element_ns(work, n):6.2f} ns an element; error against float64: "
            f"mean {error.mean().item():+.1e}, largest {error.abs().max().item():.1e} nats"
        )


if __name__ == "__main__":
    main()
