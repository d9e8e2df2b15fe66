"""The comparison table: recipe x seed x data set, trained, converted to int8 and evaluated.

    python benchmarks/compare_recipes.py --set sample --recipes new old-defaults demo \\
        --seeds 0,1,2

For each recipe and seed: ``itemrec-train`` (the recipe's flags, ``--seed``), then
``itemrec-convert --int8``, then ``itemrec-eval`` of the Keras run and the int8 model on
the set's unseen items (one random representative per item, 20 draws; open-set impostors
from the set's never-enrolled items, or a seeded half of the unseen items on the sample).
A finished step is not run again (rerun to resume); a finished run whose ``config.json``
no longer matches its recipe (a default moved since it ran) stops the script with the
fields that differ, so one recipe name never mixes two recipes. ``frozen`` (``frozen-lite1``,
``frozen-lite2``) is the no-training baseline (ImageNet features). Seeds are paired: seed s is
the same split, initialisation and evaluation draws for every recipe, so differences are read
per seed.

Results: ``benchmarks/results/recipes-<set>.json`` and ``.md`` (every command is listed; the
table holds the finished runs of the recipes asked for and of ``--reference``, so a results
file reads the same whatever else ``build/compare/<set>/`` holds), or ``--results-name``.
``--table-only`` redraws them from what has run, keeping the exit codes the file recorded.
``--latency`` adds each recipe's int8 ms per image on 1 thread (on a quiet machine).
``--recorded NAME`` takes the runs that are missing under ``build/`` from an earlier results
file instead of training them (a reference measured in a checkout whose ``build/`` is gone).
"""

from __future__ import annotations

import json
from pathlib import Path

import click
import numpy as np
from bench_convert import interleaved_latency
from commands import ROOT, run_batch, show

from itemrec.train.cli import main as train_command
from itemrec.train.config import (
    ABSENT_KEYS,
    FIELDS,
    RESUMABLE_CHANGES,
    TrainConfig,
    changed_fields,
    resolve_config,
)

RESULTS = Path(__file__).resolve().parent / "results"
SETS = {
    "sample": {"train": "data/sample/train", "unseen": "data/sample/unseen", "unknown": None},
    "devdata": {
        "train": "build/devdata/train",
        "unseen": "build/devdata/enrolled",
        "unknown": "build/devdata/unknown",
    },
    # scripts/build_faces_like.py: 25 classes x 10 grey images, the tiny-data stress case
    "faceslike": {
        "train": "build/faceslike/train",
        "unseen": "build/faceslike/unseen",
        "unknown": None,
    },
}
#: What the old TrainConfig did beside its numbers: one rate, no warm-up, decay, clipping or
#: guard, frozen features from plain images, crop + colour jitter only, no whitening.
OLD_MECHANICS = [
    *("--backbone-lr-scale", 1, "--warmup-fraction", 0, "--clip-norm", 0),
    *("--no-collapse-guard", "--no-cache-features", "--augmentations", "crop,lighting"),
    *("--whitening", 0),
]
#: The losses compared with the default center loss.
LOSSES = ("softmax", "triplet", "arcface", "cosface", "subcenter")
#: The larger EfficientNet-Lite backbones compared with the default Lite0.
BACKBONES = ("lite1", "lite2")
#: No-training baselines: ImageNet features of a backbone at the default input size.
FROZEN = {
    "frozen": f"pretrained:efficientnet_lite0@{TrainConfig.image_size}",
    **{f"frozen-{b}": f"pretrained:efficientnet_{b}@{TrainConfig.image_size}" for b in BACKBONES},
}


def _pair(*flags, steps: int = 1600, size: int = 160) -> list:
    """The flags of the pair ``backbone-lr-1-jpeg``, then ``flags``: the defaults since December
    2026 written out, so its recipes keep their meaning when the defaults move (``MEASURED_AT``
    then pins whitening alone)."""
    return [
        *("--image-size", size, "--finetune-steps", steps, "--backbone-lr-scale", 1),
        *("--augmentations", "crop,lighting,jpeg", *flags),
    ]


_MEASURED = {
    **dict.fromkeys(FROZEN),
    "new": [],  # the defaults: --data and --out only
    "old-defaults": [  # TrainConfig before issue 15 (the seed study's numbers; the
        # backbone's ImageNet side, 224 px for Lite0)
        *("--image-size", 224, "--frozen-epochs", 20, "--finetune-epochs", 30, "--frozen-lr", 1e-3),
        *("--finetune-lr", 1e-4, "--center-lambda", 1e-3, "--batch-size", 64),
        *OLD_MECHANICS,
    ],
    "demo": [  # scripts/demo.py's flags before issue 15
        *("--image-size", 96, "--frozen-epochs", 10, "--finetune-epochs", 20, "--frozen-lr", 0.01),
        *("--finetune-lr", 0.003, "--center-lambda", 0.003, "--batch-size", 32),
        *OLD_MECHANICS,
    ],
    **{f"loss-{name}": ["--loss", name] for name in LOSSES},
    # the losses at the cheap operating point the first comparison ran at (center: size-96)
    **{
        f"loss-{name}-96px": ["--loss", name, "--image-size", 96, "--finetune-steps", 400]
        for name in LOSSES
    },
    # the defaults at another input side (the resolution study ran frozen heads only), with
    # the 400 fine-tuning steps they were measured at
    **{f"size-{px}": ["--image-size", px, "--finetune-steps", 400] for px in (96, 128, 160)},
    "size-160-ft800": ["--image-size", 160, "--finetune-steps", 800],
    "size-160-ft1200": ["--image-size", 160, "--finetune-steps", 1200],
    # the defaults until the pair below replaced the backbone's 0.3 x and crop,lighting, unwhitened
    "size-160-ft1600": ["--image-size", 160, "--finetune-steps", 1600],
    "size-160-ft2000": ["--image-size", 160, "--finetune-steps", 2000],
    # no dropout in the head (compare_heads.py --grid head: it led by 3.6 points on the dev
    # benchmark's cached features; docs/defaults.md, Head), at the defaults otherwise
    "dropout-0": ["--image-size", 160, "--finetune-steps", 1600, "--dropout", 0],
    # the backbone's rate and the center weight, first chosen on the sample with the demo's
    # recipe: the backbone at the head's full rate (0.01 instead of 0.003), lambda 0.01
    # (docs/defaults.md, Fine-tuning)
    "backbone-lr-1": ["--image-size", 160, "--finetune-steps", 1600, "--backbone-lr-scale", 1],
    "lambda-0.01": ["--image-size", 160, "--finetune-steps", 1600, "--center-lambda", 0.01],
    # the default augmentation plus one more step: the two with a gain on the sample's
    # cached-feature heads that are not in the default (occlusion +2.1, JPEG +1.3 points;
    # docs/defaults.md, Augmentation)
    **{
        step: [
            *("--image-size", 160, "--finetune-steps", 1600),
            *("--augmentations", f"crop,lighting,{step}"),
        ]
        for step in ("occlusion", "jpeg")
    },
    # the two changes that led by about a point on the dev benchmark, together: they stack, and
    # are the defaults now (docs/defaults.md, Both levers together); unwhitened, the reference
    # a one-flag study of today's defaults pairs with
    "backbone-lr-1-jpeg": _pair(),
    # 2,000 fine-tuning steps: at the previous defaults they gained 0.9 points over 1,600 on the
    # dev benchmark's seed 0 (docs/defaults.md, Length)
    "backbone-lr-1-jpeg-ft2000": _pair(steps=2000),
    # a lighter center term: 0.01 rejected unknown items worse than 0.003 at the previous
    # defaults (EER +1.7; docs/defaults.md, Fine-tuning)
    "backbone-lr-1-jpeg-lambda-0.001": _pair("--center-lambda", 0.001),
    # fine-tuned at 224 px: the resolution study found 224 no better than 160 with frozen heads
    # only (docs/defaults.md, The recipe), and it costs 2-3 x the device time per frame
    "backbone-lr-1-jpeg-224": _pair(size=224),
    # a larger backbone, at the defaults and at the cheap screen's 400 steps (Lite0: size-160)
    **{b: ["--backbone", f"efficientnet_{b}", "--image-size", 160] for b in BACKBONES},
    **{
        f"{b}-ft400": [
            *("--backbone", f"efficientnet_{b}"),
            *("--image-size", 160, "--finetune-steps", 400),
        ]
        for b in BACKBONES
    },
}
#: The defaults every recipe but ``new`` (the defaults as they are) was measured at, or is
#: paired with runs that were: no whitening (docs/defaults.md, Whitening), the backbone at 0.3 x
#: the head's rate and ``crop,lighting`` (before the pair "backbone-lr-1-jpeg" became the
#: default; docs/defaults.md, Augmentation). A recipe that does not set one of them keeps it,
#: so its runs under build/ and its recorded results stay the recipe it names.
MEASURED_AT = {"--whitening": 0, "--backbone-lr-scale": 0.3, "--augmentations": "crop,lighting"}


def _unset(flags: list) -> list:
    """``MEASURED_AT``'s flags that ``flags`` does not set, with their values."""
    return [
        part for flag, value in MEASURED_AT.items() if flag not in flags for part in (flag, value)
    ]


RECIPES = {
    name: flags if flags is None or name == "new" else [*flags, *_unset(flags)]
    for name, flags in _MEASURED.items()
}


def commands_for(set_name: str, recipe: str, seed: int, out: Path) -> dict[str, list]:
    run = out / f"{recipe}-s{seed}"
    if recipe in FROZEN:
        return {f"{recipe}-s{seed}-eval": eval_command(set_name, seed, run, [FROZEN[recipe]])}
    train = [
        *("itemrec-train", "--data", ROOT / SETS[set_name]["train"], "--out", run / "run"),
        *("--seed", seed, *RECIPES[recipe]),
    ]
    return {
        f"{recipe}-s{seed}-train": train,
        f"{recipe}-s{seed}-convert": convert_command(run),
        f"{recipe}-s{seed}-eval": eval_command(set_name, seed, run, [run / "run", int8_file(run)]),
    }


def int8_file(run: Path) -> Path:
    return run / "model_int8.tflite"


def convert_command(run: Path) -> list:
    """``itemrec-convert --int8`` of the training run ``run/run``."""
    return ["itemrec-convert", run / "run", "-o", int8_file(run), "--int8"]


def eval_command(set_name: str, seed: int, run: Path, models: list) -> list:
    """``itemrec-eval`` of ``models`` on the set's unseen items into ``run/eval``."""
    data = SETS[set_name]
    return [
        *("itemrec-eval", "--data", ROOT / data["unseen"], "--out", run / "eval"),
        *("--representative-rule", "random", "--trials", 20, "--seed", seed),
        *(("--unknown", ROOT / data["unknown"]) if data["unknown"] else ()),
        *models,
    ]


def figures(model: dict) -> dict:
    return {
        "rank1": model["seed_protocol"]["mean"][0],
        "rank5": model["seed_protocol"]["mean"][4],
        "mAP": model["mAP"],
        "open_set_eer": model["open_set"]["eer"],
    }


def cmc_file(out: Path, recipe: str, seed: int) -> Path:
    """Where the run's evaluation lands; it exists once the run is done."""
    return out / f"{recipe}-s{seed}" / "eval" / "cmc.json"


def collect(set_name: str, recipe: str, seed: int, out: Path) -> list[dict]:
    if not cmc_file(out, recipe, seed).is_file():
        return []
    models = json.loads(cmc_file(out, recipe, seed).read_text())["models"]
    rows = []
    for label, model in models.items():
        kind = "int8" if label.endswith(".tflite") else "Keras"
        rows.append({"recipe": recipe, "seed": seed, "model": kind, **figures(model)})
    return rows


def recorded_runs(
    names: tuple[str, ...], set_name: str, recipes: tuple[str, ...], seeds: list[int], out: Path
) -> tuple[list[dict], dict[str, str]]:
    """Rows and commands of earlier results files ``names`` for the recipe/seed pairs asked for
    that have no run under ``out`` (the first file holding a pair wins). A recorded run whose
    commands differ from its recipe's today is refused; a moved default does not show in the
    commands, so the caller vouches for those (the results' dates and docs/defaults.md)."""
    rows, commands, taken = [], {}, set()
    for name in names:
        path = RESULTS / f"{name}.json"
        if not path.is_file():
            raise click.ClickException(f"--recorded {name}: no results file {path}")
        saved = json.loads(path.read_text())
        for recipe in recipes:
            for seed in seeds:
                run = f"{recipe}-s{seed}"
                found = [r for r in saved["rows"] if (r["recipe"], r["seed"]) == (recipe, seed)]
                if not found or run in taken or cmc_file(out, recipe, seed).is_file():
                    continue
                wanted = {n: show(c) for n, c in commands_for(set_name, recipe, seed, out).items()}
                was = {n: _as_written_today(c) for n, c in saved["commands"].items() if n in wanted}
                if was != wanted:
                    raise click.ClickException(
                        f"{run} in {name} ran other commands than its recipe's today"
                    )
                taken.add(run)
                rows += [{**r, "recorded": name} for r in found]
                commands.update({n: f"{c}  # recorded in {name}" for n, c in was.items()})
    return rows, commands


def _as_written_today(command: str) -> str:
    """A recorded command with the flags that defaults of today need to say what it ran: a
    training recorded without ``--whitening``, ``--backbone-lr-scale`` or ``--augmentations``
    ran at ``MEASURED_AT`` (whitening did not exist, the others were the defaults)."""
    if not command.startswith("itemrec-train "):
        return command
    return show([command, *_unset(command.split())])


def int8_latency(rows: list[dict], out: Path) -> dict[str, float]:
    """Median ms per image on 1 interpreter thread of each trained recipe's int8 model (its
    first seed's: the graph, not the weights, sets the time), all timed round robin."""
    paths = {}
    for row in sorted(rows, key=lambda r: r["seed"]):
        model = int8_file(out / f"{row['recipe']}-s{row['seed']}")
        if model.is_file():
            paths.setdefault(row["recipe"], model)
    return interleaved_latency(paths, threads=1) if paths else {}


def table(rows: list[dict], reference: str, latency: dict[str, float] | None = None) -> list[str]:
    keys = ("rank1", "rank5", "mAP", "open_set_eer")
    timed = " int8 ms, 1 thread |" if latency else ""
    lines = [
        "| recipe | model | seeds | rank-1 | rank-5 | mAP | open-set EER "
        f"| rank-1 - {reference} (paired) |{timed}",
        "|---|---|---|---|---|---|---|---|" + ("---|" if latency else ""),
    ]
    groups = sorted({(r["recipe"], r["model"]) for r in rows}, key=lambda g: (g[0], g[1]))
    for recipe, kind in groups:
        runs = [r for r in rows if (r["recipe"], r["model"]) == (recipe, kind)]
        cells = []
        for key in keys:
            values = np.array([r[key] for r in runs])
            std = values.std(ddof=1) if len(values) > 1 else 0.0
            cells.append(f"{values.mean():.3f} +- {std:.3f}")
        base = {
            r["seed"]: r["rank1"] for r in rows if (r["recipe"], r["model"]) == (reference, kind)
        }
        diffs = np.array([r["rank1"] - base[r["seed"]] for r in runs if r["seed"] in base])
        paired = (
            f"{diffs.mean():+.3f} +- {diffs.std(ddof=1) if len(diffs) > 1 else 0.0:.3f}"
            if len(diffs)
            else "-"
        )
        ms = latency.get(recipe) if kind == "int8" and latency else None
        timing = (f" {ms:.1f} |" if ms else " - |") if latency else ""
        lines.append(
            f"| {recipe} | {kind} | {len(runs)} | " + " | ".join(cells) + f" | {paired} |{timing}"
        )
    return lines


@click.command()
@click.option("--set", "set_name", type=click.Choice(sorted(SETS)), default="sample")
@click.option("--recipes", "-r", multiple=True, type=click.Choice(sorted(RECIPES)), required=True)
@click.option("--seeds", default="0,1,2", show_default=True, help="Comma-separated seeds.")
@click.option("--reference", default="new", show_default=True, help="Recipe of the paired diff.")
@click.option("--table-only", is_flag=True, help="Only collect what has run into the table.")
@click.option(
    "--latency",
    is_flag=True,
    help="Also time each recipe's int8 model (1 thread, round robin; run it on a quiet machine).",
)
@click.option(
    "--results-name",
    default=None,
    help="File name of the results, without suffix [default: recipes-<set>].",
)
@click.option(
    "--recorded",
    multiple=True,
    metavar="NAME",
    help="Take runs missing under build/ from benchmarks/results/NAME.json, not training them.",
)
def main(set_name, recipes, seeds, reference, table_only, latency, results_name, recorded):
    seeds = [int(s) for s in seeds.split(",")]
    out = ROOT / "build" / "compare" / set_name
    tabled = [r for r in RECIPES if r in recipes or r == reference]
    stale = [
        f"{out / f'{recipe}-s{seed}'}: {why}"
        for recipe in tabled
        for seed in seeds
        for name, command in commands_for(set_name, recipe, seed, out).items()
        if name.endswith("-train") and (why := stale_run(command))
    ]
    if stale:
        raise click.ClickException(
            "runs that no longer match their recipe (move them away to rerun):\n  "
            + "\n  ".join(stale)
        )
    recorded_rows, recorded_commands = recorded_runs(recorded, set_name, recipes, seeds, out)
    taken = {(r["recipe"], r["seed"]) for r in recorded_rows}
    commands = {}
    for recipe in recipes:
        for seed in seeds:
            if (recipe, seed) in taken or cmc_file(out, recipe, seed).is_file():
                continue
            steps = commands_for(set_name, recipe, seed, out)
            commands.update({name: c for name, c in steps.items() if not _done(name, c)})
    # One at a time: each chain (train, convert, eval) runs in order, and training uses both cores.
    codes = run_batch(commands, out / "logs", jobs=1) if commands and not table_only else {}
    rows = [r for recipe in tabled for seed in seeds for r in collect(set_name, recipe, seed, out)]
    rows += recorded_rows
    listed = recorded_commands | {
        name: show(c)
        for recipe in tabled
        for seed in seeds
        for name, c in commands_for(set_name, recipe, seed, out).items()
        if cmc_file(out, recipe, seed).is_file()
    }
    latency_ms = int8_latency(rows, out) if latency else {}
    RESULTS.mkdir(exist_ok=True)
    stem = RESULTS / (results_name or f"recipes-{set_name}")
    if table_only and stem.with_suffix(".json").is_file():
        codes = json.loads(stem.with_suffix(".json").read_text()).get("exit_codes", {})
    stem.with_suffix(".json").write_text(
        json.dumps(
            {"rows": rows, "int8_ms_1_thread": latency_ms, "commands": listed, "exit_codes": codes},
            indent=1,
        )
    )
    text = "\n".join(
        [
            f"# Recipes on {set_name} (mean +- std over seeds)",
            "",
            *table(rows, reference, latency_ms),
            "",
            *(
                [
                    "Read from earlier results (--recorded), not run here: "
                    + ", ".join(f"{r}-s{s}" for r, s in sorted(taken)),
                    "",
                ]
                if taken
                else []
            ),
        ]
        + ["Commands:", "", *(f"    {c}" for c in listed.values()), ""]
    )
    stem.with_suffix(".md").write_text(text)
    click.echo(text)


#: Fields that name where a run is or how it reports, not what it trains.
NOT_RECIPE = RESUMABLE_CHANGES | {"data"}


def stale_run(train: list) -> str | None:
    """Why the finished run of the ``itemrec-train`` argv ``train`` differs from it, or None."""
    argv = [str(a) for a in train[1:]]
    saved_path = Path(argv[argv.index("--out") + 1]) / "config.json"
    if not saved_path.is_file():
        return None
    saved = json.loads(saved_path.read_text())
    context = train_command.make_context("itemrec-train", argv)
    given = {
        name: value
        for name, value in context.params.items()
        if name in FIELDS
        and context.get_parameter_source(name) is not click.core.ParameterSource.DEFAULT
    }
    wanted = resolve_config({}, given)
    changed = changed_fields(saved, wanted, ignore=NOT_RECIPE)
    values = wanted.to_dict()
    return (
        ", ".join(
            f"{k}={saved.get(k, ABSENT_KEYS.get(k))!r} (recipe: {values.get(k)!r})" for k in changed
        )
        or None
    )


def _done(name: str, command: list) -> bool:
    """A train or convert step whose output already exists."""
    if name.endswith("-train"):
        return (Path(command[command.index("--out") + 1]) / "embedder.keras").is_file()
    if name.endswith("-convert"):
        return Path(command[command.index("-o") + 1]).is_file()
    return False


if __name__ == "__main__":
    main()
