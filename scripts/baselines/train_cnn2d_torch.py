#!/usr/bin/python3
"""PyTorch baseline for `hybrid bench --workload train-cnn2d` (docs/benchmarks.md): the same reference CNN, shapes,
optimizer and batch, timed the same way, so the two can be measured back to back on one machine.

The network is Bench.referenceCnn: input [1, 40, 65]; Conv2d 32 3x3 'same', BatchNorm2d, ReLU, MaxPool2d 2; Conv2d 64
3x3 'same', BatchNorm2d, ReLU, MaxPool2d 2; Flatten (64 x 10 x 16); Linear 128, ReLU, Dropout 0.3; Linear 10. Data: 2,700
standard-normal images with uniform random labels over 10 classes (float32). Adam (lr 1e-3, PyTorch's defaults
otherwise), cross-entropy, batch 64 with a shorter last batch, a fresh shuffle each epoch. After 3 warm-up batches each
timed epoch runs forward, backward and the optimizer step over all 2,700 samples; the figure is samples per second
over the timed epochs (`bench` times one epoch per run and reports the median of its runs; here every epoch's rate is
printed and the median reported the same way).

Usage: /usr/bin/python3 scripts/baselines/train_cnn2d_torch.py [--threads N] [--runs R] [--device cpu|cuda]
(default: the machine's core count, 3 runs, cpu). Prints one JSON line:
{"workload": "train-cnn2d", "framework": "pytorch", "version": ..., "device": ..., "threads": ..., "samples_per_s": [...],
 "median_samples_per_s": ...}. Debian's python3-torch (apt-get install python3-torch) is enough on CPU.
"""
import argparse
import json
import os
import statistics
import sys
import time

import torch
from torch import nn

COUNT, BATCH, CLASSES = 2700, 64, 10


def reference_cnn() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64 * 10 * 16, 128), nn.ReLU(), nn.Dropout(0.3), nn.Linear(128, CLASSES))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    args = parser.parse_args()
    if args.threads < 1 or args.runs < 1:
        parser.error("--threads and --runs must be at least 1")
    if args.device == "cuda" and not torch.cuda.is_available():
        print("train_cnn2d_torch: --device cuda, but this PyTorch sees no CUDA device", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    torch.manual_seed(12345)
    device = torch.device(args.device)
    inputs = torch.randn(COUNT, 1, 40, 65, device=device)
    labels = torch.randint(0, CLASSES, (COUNT,), device=device)
    model = reference_cnn().to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    model.train()

    def step(index: torch.Tensor) -> None:
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(inputs[index]), labels[index])
        loss.backward()
        optimizer.step()

    def synchronize() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    warm = torch.randperm(COUNT, device=device)
    for b in range(3):
        step(warm[b * BATCH:(b + 1) * BATCH])
    synchronize()
    rates = []
    for _ in range(args.runs):
        order = torch.randperm(COUNT, device=device)
        start = time.perf_counter()
        for b in range(0, COUNT, BATCH):
            step(order[b:b + BATCH])
        synchronize()
        rates.append(COUNT / (time.perf_counter() - start))
    print(json.dumps({"workload": "train-cnn2d", "framework": "pytorch", "version": torch.__version__,
                      "device": args.device, "threads": args.threads,
                      "samples_per_s": [round(r, 1) for r in rates],
                      "median_samples_per_s": round(statistics.median(rates), 1)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
