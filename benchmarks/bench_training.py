"""Training-loop benchmark: reslab.train.fit against a plain d2l-style loop, same model, data and optimizer.

The baseline is what most course notebooks do: a DataLoader over a TensorDataset, per-batch host syncs for
the running metrics (``float(loss)``), test accuracy through a second DataLoader every epoch. Both loops run
here, one after the other, on the same device; the script prints throughput and time to a target test
accuracy for each, and the ratios.

    python benchmarks/bench_training.py [--model resnet20] [--epochs 8] [--target 0.95] [--device cpu]
    python benchmarks/bench_training.py --dataset mnist28 --epochs 3 --target 0.9   # 28x28 digits, that suite's nets
"""
from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from reslab import data, models, reference
from reslab.train import TrainConfig, choose_device, device_name, fit, seed_everything


def d2l_style_fit(model, dataset, epochs, lr, batch_size, device):
    """The baseline, written the way d2l's ``train_ch6`` is: returns per-epoch (seconds, test accuracy)."""
    model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    train_iter = DataLoader(TensorDataset(dataset.train.x, dataset.train.y), batch_size, shuffle=True)
    test_iter = DataLoader(TensorDataset(dataset.test.x, dataset.test.y), 256)
    history = []
    for _ in range(epochs):
        start = time.perf_counter()
        model.train()
        loss_sum = correct = seen = 0.0
        for x, y in train_iter:
            x, y = x.to(device), y.to(device)
            y_hat = model(x)
            loss = F.cross_entropy(y_hat, y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            with torch.no_grad():
                loss_sum += float(loss) * x.shape[0]
                correct += float((y_hat.argmax(1) == y).sum())
                seen += x.shape[0]
        model.eval()
        right = total = 0.0
        with torch.no_grad():
            for x, y in test_iter:
                x, y = x.to(device), y.to(device)
                right += float((model(x).argmax(1) == y).sum())
                total += y.numel()
        history.append((time.perf_counter() - start, right / total))
    return history


def time_to(target, history):
    elapsed = 0.0
    for seconds, acc in history:
        elapsed += seconds
        if acc >= target:
            return elapsed
    return float("nan")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=["digits", "mnist28"], default="digits",
                        help="the 8x8 digits or the 28x28 MNIST digits, with the model of that reference suite")
    parser.add_argument("--model", default="resnet20", help="a model name of the dataset's reference suite")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--target", type=float, default=0.95, help="test accuracy for the time-to-target figure")
    parser.add_argument("--device", default=None)
    args = parser.parse_args()
    device = choose_device(args.device)
    dataset = data.load(args.dataset)
    config = reference.SUITES[args.dataset].models[args.model]
    runs = {}
    # reslab's defaults, then with bf16 autocast + channels_last forced on (its default on CUDA only)
    for name, amp in (("d2l-style", None), ("reslab", None), ("reslab+bf16", True)):
        seed_everything(0)
        model = models.build(config)
        if name == "d2l-style":
            history = d2l_style_fit(model, dataset, args.epochs, args.lr, args.batch_size, device)
        else:
            cfg = TrainConfig(epochs=args.epochs, lr=args.lr, batch_size=args.batch_size, device=str(device),
                              amp=amp)
            history = [(m.seconds, m.test_acc) for m in fit(model, dataset, cfg, progress=False)]
        runs[name] = history
    n = len(dataset.train) * args.epochs
    print(f"{args.model} on {args.dataset} {dataset.shape}, {args.epochs} epochs, batch {args.batch_size}, Adam lr {args.lr}, "
          f"{device_name(device)}, torch {torch.__version__}")
    print(f"{'loop':12s} {'seconds':>8s} {'images/s':>9s} {'final acc':>9s} {f'to {args.target:.2f}':>9s}")
    for name, history in runs.items():
        seconds = sum(s for s, _ in history)
        print(f"{name:12s} {seconds:8.2f} {n / seconds:9.0f} {history[-1][1]:9.3f} {time_to(args.target, history):9.2f}")
    base = runs.pop("d2l-style")
    for name, ours in runs.items():
        throughput = sum(s for s, _ in base) / sum(s for s, _ in ours)
        target = time_to(args.target, base) / time_to(args.target, ours)
        print(f"{name} vs d2l-style: throughput x{throughput:.2f}, "
              f"time to {args.target:.2f} test accuracy x{target:.2f}")


if __name__ == "__main__":
    main()
