"""f32 matrix-product rate of PyTorch at given shapes: the reference that
`ftb bench --gemm-reference PYTHON` sets next to its own products.

Reads {"threads": T, "products": [{"m", "k", "n", "lhs_transposed",
"rhs_transposed"}, ...]} as JSON on stdin; prints one JSON object with the
total GFLOP/s (all products' FLOPs over the sum of each product's best time)
and the rate of each product. The timing method is the same as ftb's: each
product repeated for at least 20 ms, best of 5 such runs.
"""
import json
import sys
import time

import torch


def operand(rows, cols, transposed):
    # A transposed operand is a strided view, as autodiff hands it to the product.
    if transposed:
        return torch.rand(cols, rows).t()
    return torch.rand(rows, cols)


def best_seconds(m, k, n, lhs_t, rhs_t):
    a = operand(m, k, lhs_t)
    b = operand(k, n, rhs_t)
    out = torch.empty(m, n)
    torch.mm(a, b, out=out)
    reps = 1
    while True:
        start = time.perf_counter()
        for _ in range(reps):
            torch.mm(a, b, out=out)
        if time.perf_counter() - start >= 0.02:
            break
        reps *= 2
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(reps):
            torch.mm(a, b, out=out)
        best = min(best, (time.perf_counter() - start) / reps)
    return best


def main():
    request = json.load(sys.stdin)
    torch.set_num_threads(int(request["threads"]))
    flops, seconds, rates = 0.0, 0.0, []
    for p in request["products"]:
        s = best_seconds(p["m"], p["k"], p["n"], p["lhs_transposed"], p["rhs_transposed"])
        f = 2.0 * p["m"] * p["k"] * p["n"]
        flops += f
        seconds += s
        rates.append(f / s / 1e9)
    print(json.dumps({
        "gflops": flops / seconds / 1e9,
        "per_product_gflops": rates,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "mkl": torch.backends.mkl.is_available(),
    }))


if __name__ == "__main__":
    main()
