"""Does this host hold its speed under minutes of load? An fp32 matmul on every core, its rate every interval.

    python benchmarks/host_sustained.py [--seconds 240] [--interval 15] [--threads 2] [--size 1024]

Why: against infinity on a 2-core AVX2 host (2026-12-04), open levels that held for a minute or two collapsed
after three to five minutes at the same rate (block medians 95 -> 421 -> 5,374 ms), with the load generator's
own send lag rising with them: the whole machine slowing, not a queue at the knee. A host whose speed falls
under sustained load (a burstable CPU's credits, a neighbour, heat) looks to a capacity search like a server
that cannot hold its rate, and no model fitted on minute-long rows will predict it. This prints the rate each
interval (GFLOP/s), the first interval's against the last's, and the load average before and after.
"""

from __future__ import annotations

import argparse
import os
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=240.0)
    parser.add_argument("--interval", type=float, default=15.0)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--size", type=int, default=1024)
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    a = torch.randn(args.size, args.size)
    b = torch.randn(args.size, args.size)
    flop = 2.0 * args.size**3
    print(f"load before: {os.getloadavg()}; {args.threads} threads, {args.size}^3 fp32 matmuls", flush=True)
    rates: list[float] = []
    started = time.monotonic()
    while time.monotonic() - started < args.seconds:
        count, t0 = 0, time.monotonic()
        while time.monotonic() - t0 < args.interval:
            torch.mm(a, b)
            count += 1
        rate = count * flop / (time.monotonic() - t0) / 1e9
        rates.append(rate)
        print(f"{time.monotonic() - started:6.0f} s  {rate:7.1f} GFLOP/s", flush=True)
    print(
        f"first {rates[0]:.1f}, last {rates[-1]:.1f} GFLOP/s ({rates[-1] / rates[0] - 1:+.0%}); "
        f"lowest {min(rates):.1f}, highest {max(rates):.1f}; load after: {os.getloadavg()}"
    )


if __name__ == "__main__":
    main()
