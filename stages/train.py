"""train@<label_noise>-<width>-<block>: train one block of members vectorized."""

import argparse

from _common import run

PARAMS = ("model", "train", "ensemble.block_size", "ensemble.seeds_per_draw")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--label-noise", type=float, required=True)
    ap.add_argument("--width", type=int, required=True)
    ap.add_argument("--block", type=int, required=True)
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--split", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    from biasvar.core.config import load_declared, load_runtime
    from biasvar.data.config import check_block_layout, check_label_noise, check_width
    from biasvar.ensemble.config import ModelParams, TrainParams

    # Validate everything this stage reads before loading data or torch.
    prm = load_declared(PARAMS)
    model_cfg = prm.section(ModelParams)
    train_cfg = prm.section(TrainParams)
    block_size, spd = check_block_layout(prm.get("ensemble.block_size"),
                                         prm.get("ensemble.seeds_per_draw"))
    check_label_noise("data.label_noise", args.label_noise)
    check_width("ensemble.widths", args.width)
    runtime = load_runtime()

    from biasvar.core.errors import InputError
    from biasvar.data.dataset import load_dataset
    from biasvar.data.splits import load_split
    from biasvar.ensemble.blocks import block_info, save_block
    from biasvar.ensemble.train import BlockSpec, train_block

    dataset = load_dataset(args.dataset, label_noise=args.label_noise)
    split = load_split(args.split)
    members = tuple(range(args.block * block_size, (args.block + 1) * block_size))
    missing = sorted({m // spd for m in members} - set(split.draws.tolist()))
    if missing:  # a split file of another block or layout
        raise InputError(f"{args.split}: holds draws {split.draws.tolist()}, but block "
                         f"{args.block} needs draws {sorted({m // spd for m in members})} "
                         f"(missing {missing}; rerun split)")
    if split.n_train != dataset.n_train:
        raise InputError(f"{args.split}: records n_train = {split.n_train}, but "
                         f"{args.dataset} has {dataset.n_train} training examples (rerun split)")
    spec = BlockSpec(members, tuple(m // spd for m in members), tuple(m % spd for m in members),
                     args.width)
    result = train_block(dataset, split, spec, model_cfg, train_cfg, runtime,
                         desc=f"train noise={args.label_noise} width={args.width} "
                              f"block={args.block}")
    # Everything collect needs to refuse merging inconsistent blocks: the params
    # this stage reads and the identity (fingerprints) of its dataset and split.
    info = block_info(args.label_noise, args.width, args.block,
                      params={"model": prm.get("model"), "train": prm.get("train"),
                              "split_method": split.method},
                      layout={"block_size": block_size, "seeds_per_draw": spd},
                      dataset=dataset, split=split, split_file=args.split)
    save_block(result, args.out, info, dataset.y_test, dataset.y_train)
    acc = [m["test_accuracy"] for m in result.metrics]
    in_bag = [m["in_bag_error"] for m in result.metrics]
    print(f"train: {len(members)} members in {result.seconds:.1f}s on {result.device} "
          f"({result.seconds / len(members):.2f}s/member), test accuracy "
          f"{min(acc):.3f}..{max(acc):.3f}, in-bag error {min(in_bag):.3f}..{max(in_bag):.3f}"
          f" -> {args.out}")


if __name__ == "__main__":
    run(main)
