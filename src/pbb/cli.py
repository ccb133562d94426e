"""The `pbb` command. Every subcommand is a thin shell over a library function.

Errors a user can cause are `PbbError`s and print as one line (exit 2), never a traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from pbb.errors import PbbError

app = typer.Typer(
    help="pbb: a lab for Programming by Backprop experiments.\n\n"
    "Finetune a language model on programs' source code alone, then measure whether it can compute their outputs.\n\n"
    "Start with `pbb run configs/quick.yaml`.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(stderr=True)
out = Console()

SetOpt = Annotated[
    Optional[list[str]],
    typer.Option("--set", "-s", help="Override a config field: --set key.path=value (repeatable), e.g. --set model=tiny-random."),
]


@app.command()
def suites() -> None:
    """List the registered program suites."""
    from pbb.programs import SUITES

    t = Table("suite", "what a program is", box=None)
    for name, cls in sorted(SUITES.items()):
        t.add_row(name, cls.summary)
    out.print(t)


@app.command()
def curricula() -> None:
    """List the named curricula (or write `curriculum: custom` with `stages:` in a config)."""
    from pbb.curricula import CURRICULA

    t = Table("curriculum", "stages", "w/o IO examples", "w/o IO code", box=None)  # as declared, checked on every build
    for c in CURRICULA.values():
        t.add_row(c.name, c.summary, "trained" if c.trains_without_io_examples else "never",
                  "shown" if c.shows_without_io_source else "never")
    out.print(t)


@app.command()
def models() -> None:
    """List the model aliases (any Hugging Face directory or hub id works too)."""
    from pbb.models import MODELS

    t = Table("alias", "what it is", box=None)
    for alias, spec in MODELS.items():
        t.add_row(alias, spec.description)
    out.print(t)


@app.command()
def validate(
    configs: Annotated[list[Path], typer.Argument(help="Config files to check.")],
    set_: SetOpt = None,
) -> None:
    """Check configs (with their --set overrides) without running anything."""
    from pbb.config import load_experiment
    from pbb.models import check_model

    bad = 0
    for path in configs:
        try:
            exp = load_experiment(path, set_ or [])
            check_model(exp.model)  # cheap: builds and loads nothing
            stages = ", ".join(f"{s.name}({s.method})" for s in exp.resolved_stages()) or "no training"
            out.print(f"[green]ok[/green]  {escape(str(path))}: {escape(exp.name)}: {exp.suite} / {exp.curriculum} ({escape(stages)}) / {escape(exp.model)}")
        except PbbError as e:
            bad += 1
            out.print(f"[red]bad[/red] {escape(str(e))}")
    if bad:
        raise typer.Exit(2)


@app.command()
def data(
    config: Annotated[Path, typer.Argument(help="Experiment config (YAML).")],
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Directory to write the build into.")],
    set_: SetOpt = None,
    no_tokenizer: Annotated[bool, typer.Option("--no-tokenizer", help="Count the ledger in characters instead of loading the model's tokenizer.")] = False,
) -> None:
    """Build the data step of an experiment: programs, groups, examples, documents, stage datasets, exposure ledger."""
    from pbb.config import load_experiment
    from pbb.data.build import build_data
    from pbb.io import ensure_writable_dir

    exp = load_experiment(config, set_ or [])
    ensure_writable_dir(out_dir, "--out")
    tokenizer = None
    if not no_tokenizer:
        from pbb.models import load_tokenizer

        tokenizer = load_tokenizer(exp.model)
    manifest = build_data(exp, out_dir, tokenizer=tokenizer)
    from pbb.store import DataStore

    ledger = DataStore(out_dir).read_ledger()
    if ledger is not None:
        (out if out.is_terminal else Console(width=140)).print(ledger_table(ledger))  # a pipe's 80 columns would fold every cell
    if budgets := manifest.get("budgets"):
        out.print(f"longest reference completion: direct {budgets['direct']}, CoT {budgets['cot']} {budgets['unit']} "
                  "(the generation caps left unset fit these)", highlight=False)
    if shuffled := manifest.get("shuffled_code"):
        out.print("shuffled-code control, w/o IO name <- the source it is trained with: "
                  + ", ".join(f"{escape(a)} <- {escape(b)}" for a, b in shuffled.items()), highlight=False)
    out.print(f"wrote {escape(str(out_dir))}: {manifest['counts']['programs']} (content hash {manifest['content_hash'][:12]})")


def ledger_table(ledger) -> Table:
    """The exposure ledger as a rich table: one row per stage, group and replay."""
    from pbb.records import LEDGER_KINDS
    from pbb.report.format import number
    from pbb.report.provenance import ledger_group_label

    unit = "tokens" if ledger.token_unit == "tokens" else "chars"
    short = {"code_doc": "code", "nl_doc": "NL", "direct": "direct", "cot_with_source": "CoT+src", "cot_without_source": "CoT-src"}
    t = Table("stage", "group", box=None,
              title="exposure ledger: records by kind (CoT+src: the completion restates the source); exposures = records × epochs",
              caption=f"{unit}: prompt + completion, one pass"
              + (f", {escape(ledger.tokenizer)}'s tokenizer" if ledger.tokenizer else ", built without a tokenizer"))
    for header in (*(short[k] for k in LEDGER_KINDS), "records", unit, "epochs", "exposures"):
        t.add_column(header, justify="right")
    for r in ledger.rows:
        t.add_row(escape(r.stage), ledger_group_label(r.group, r.replay),
                  *(number(getattr(r, k)) for k in LEDGER_KINDS), number(r.records), number(r.tokens),
                  number(r.epochs), number(r.exposures))
    return t


@app.command("import-corpus")
def import_corpus(
    file: Annotated[Path, typer.Argument(help="JSONL in CRUXEval's format: code, input, output (id optional).")],
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Directory for programs.jsonl, examples.jsonl, manifest.json.")],
    seed: Annotated[int, typer.Option(help="Seed of the input mutations.")] = 0,
    n_inputs: Annotated[int, typer.Option(help="Distinct inputs wanted per function (the given one included).")] = 8,
) -> None:
    """Import real Python functions (untrusted: run only in the sandbox), mutate inputs, keep what runs."""
    from pbb.data.corpus_import import import_corpus as _import

    summary = _import(file, out_dir, seed=seed, n_inputs=n_inputs)
    out.print(summary.get("summary_line", summary))


@app.command()
def run(
    config: Annotated[Path, typer.Argument(help="Experiment config (YAML), e.g. configs/quick.yaml.")],
    set_: SetOpt = None,
    out_dir: Annotated[Optional[Path], typer.Option("--out", "-o", help="Run directory (default runs/<name>).")] = None,
) -> None:
    """Run an experiment end to end: data -> train (each stage) -> evaluate -> report.

    Rerunning on the same directory skips every step whose outputs exist with matching
    input hashes, so a killed run resumes where it stopped.
    """
    from pbb.config import load_experiment
    from pbb.experiment import run_experiment

    exp = load_experiment(config, set_ or [])
    run_dir = out_dir or Path("runs") / exp.name
    report = run_experiment(exp, run_dir)
    out.print(f"[bold]report:[/bold] {report}")


@app.command()
def report(run_dir: Annotated[Path, typer.Argument(help="A run directory (runs/<name>).")]) -> None:
    """(Re)generate report.md and plots/ of a run directory."""
    from pbb.report import write_report

    path = write_report(run_dir)
    out.print(f"wrote {path}")


@app.command()
def compare(
    run_dirs: Annotated[list[Path], typer.Argument(help="Run directories to put side by side.")],
    out_file: Annotated[Optional[Path], typer.Option("--out", "-o", help="Also write the table here (Markdown).")] = None,
) -> None:
    """Print (and write) a side-by-side table of several runs, with intervals."""
    from pbb.report.compare import compare_runs

    text = compare_runs(run_dirs, out_file)
    out.print(text, markup=False, highlight=False, soft_wrap=True)  # a wide table must not be re-wrapped


def _parse_seeds(text: str) -> list[int]:
    try:
        return [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise PbbError(f"--seeds {text!r}: expected integers separated by commas, e.g. --seeds 0,1,2") from None


@app.command()
def study(
    study_file: Annotated[Path, typer.Argument(help="Study file (YAML), e.g. studies/paper.yaml.")],
    seeds: Annotated[Optional[str], typer.Option("--seeds", help="Seeds to run, replacing the file's: --seeds 0,1,2.")] = None,
    executor: Annotated[str, typer.Option("--executor", "-x", help="local (one run after another here) or ray.")] = "local",
    address: Annotated[Optional[str], typer.Option("--address", help="Ray cluster to use (default: start a local Ray instance).")] = None,
    out_dir: Annotated[Optional[Path], typer.Option("--out", "-o", help="Study directory (default runs/study-<name>).")] = None,
    set_: SetOpt = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the arms x seeds, the finished runs and the time left; run nothing.")] = False,
    readme_table: Annotated[bool, typer.Option("--readme-table", help="Print the README's Findings table from DIR/findings.json; run nothing.")] = False,
    findings: Annotated[Optional[str], typer.Option("--findings", help="Run only the arms these findings compare (ids, comma-separated: --findings pbb-cot,code-vs-nl); the others read \"not run\".")] = None,
) -> None:
    """Run every arm x seed of a study (resumable), then judge each finding: reproduced, contradicted or inconclusive.

    Writes DIR/findings.json, DIR/study.md and DIR/plots/findings.png; each run is an ordinary
    run directory DIR/runs/<arm>-s<seed>/, skipped when finished.
    """
    from pbb.study import dry_run_text, evaluate_study, load_study, run_study

    st = load_study(study_file, seeds=_parse_seeds(seeds) if seeds is not None else None, overrides=set_ or [])
    where = out_dir or Path("runs") / f"study-{st.name}"
    if dry_run:
        out.print(dry_run_text(st, where), markup=False, highlight=False, soft_wrap=True)
        return
    if readme_table:
        import json

        from pbb.study.report import readme_table as table

        path = where / "findings.json"
        result = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else evaluate_study(st, where)
        out.print(table(result), markup=False, highlight=False, soft_wrap=True)
        return
    ids = [i.strip() for i in findings.split(",") if i.strip()] if findings else None
    result = run_study(st, where, executor=executor, address=address, findings=ids)
    counts = {}
    for f in result["findings"]:
        counts[f["verdict"]] = counts.get(f["verdict"], 0) + 1
    out.print(f"[bold]study:[/bold] {where / 'study.md'} ({', '.join(f'{n} {v}' for v, n in counts.items()) or 'no findings'})")
    if result["failed"]:
        raise PbbError(f"{len(result['failed'])} run(s) failed: {', '.join(result['failed'])}; see {where / 'study.md'} "
                       "and rerun the same command to resume them")


@app.command("eval-corpus")
def eval_corpus(
    file: Annotated[Path, typer.Argument(help="CRUXEval-format JSONL (code, input, output).")],
    model: Annotated[str, typer.Option("--model", "-m", help="Model alias, directory or hub id.")] = "smollm2-135m",
    protocol: Annotated[str, typer.Option(help="cruxeval: CRUXEval's own prompts, stop words and sampling, the protocol "
                                               "of its paper's tables and leaderboard. pbb: pbb's earlier prompts "
                                               "(direct ends on `==`, CoT answers after `Answer:`), greedy; not comparable "
                                               "with CRUXEval's numbers.")] = "cruxeval",
    mode: Annotated[str, typer.Option(help="direct or cot (cruxeval also has phind: the prompt it used for Phind models).")] = "direct",
    n_samples: Annotated[Optional[int], typer.Option(help="Samples per record (cruxeval default 10; pbb 1).")] = None,
    temperature: Annotated[Optional[float], typer.Option(help="Sampling temperature (cruxeval default 0.2; pbb 0 = greedy).")] = None,
    top_p: Annotated[Optional[float], typer.Option(help="Nucleus sampling (cruxeval default 0.95).")] = None,
    greedy: Annotated[bool, typer.Option("--greedy", help="Greedy decoding, one sample a record (pass@1 = accuracy).")] = False,
    max_new_tokens: Annotated[Optional[int], typer.Option(help="Cap on generated tokens (default: the protocol's).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the sampling.")] = 0,
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Directory for predictions.jsonl and metrics.json.")] = Path("runs/cruxeval"),
    limit: Annotated[Optional[int], typer.Option(help="Only the first N records.")] = None,
    batch_size: Annotated[int, typer.Option(help="Prompts per generation batch.")] = 32,
) -> None:
    """CRUXEval output prediction (the code in the prompt): pass@1 and pass@5 with intervals.

    `--protocol cruxeval` (the default) is the protocol of CRUXEval's paper tables and
    leaderboard: its prompts, 10 samples, pass@k by the unbiased estimator. Its Pass@1 is
    this run's pass@1 at the default temperature 0.2; its Pass@5 is pass@5 of a second run
    with `--temperature 0.8`. `--greedy` for one greedy answer per record.
    """
    from pbb.evaluate.corpus_eval import eval_corpus as _eval

    from pbb.io import ensure_writable_dir
    from pbb.models import check_model

    check_model(model)
    ensure_writable_dir(out_dir, "--out")
    m = _eval(file, model=model, mode=mode, out_dir=out_dir, protocol=protocol, n_samples=n_samples,
              temperature=0.0 if greedy else temperature, top_p=top_p, max_new_tokens=max_new_tokens, seed=seed,
              limit=limit, batch_size=batch_size)
    parts = [f"pass@{k} {v['estimate']:.3f} [{v['ci'][0]:.3f}, {v['ci'][1]:.3f}]" for k, v in m["pass_at_k"].items()
             if k in ("1", "5")]
    how = "greedy" if m["temperature"] <= 0 else f"{m['n_samples']} samples at T={m['temperature']:g}"
    out.print(f"CRUXEval-O ({protocol}/{mode}, {how}) of {model} on {m['n']} records: {', '.join(parts)}; "
              f"wrote {out_dir}", highlight=False)


@app.command("score-corpus")
def score_corpus(
    file: Annotated[Path, typer.Argument(help="The CRUXEval-format JSONL the generations answer.")],
    generations: Annotated[Path, typer.Option("--generations", "-g", help="CRUXEval-format generations: a JSON object "
                                              "from `sample_N` (or a record id) to a list of strings; CRUXEval's scored "
                                              "files (raw_generations) too.")],
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Directory for verdicts.jsonl and metrics.json.")],
    mode: Annotated[str, typer.Option(help="direct (bare answers or `assert f(..) == X`), cot (answers between [ANSWER] tags) or phind.")] = "direct",
) -> None:
    """Grade generations made elsewhere with pbb's grader (value equality, never executed): verdicts and pass@k."""
    from pbb.evaluate.score import score_generations

    m = score_generations(file, generations, out_dir, mode=mode)
    parts = [f"pass@{k} {v['estimate']:.3f} [{v['ci'][0]:.3f}, {v['ci'][1]:.3f}]" for k, v in m["pass_at_k"].items()
             if k in ("1", "5")]
    line = f"{m['n_generations']} generations of {m['n_records']} records: {', '.join(parts)}"
    if "cruxeval_agreement" in m:
        a = m["cruxeval_agreement"]
        line += f"; agrees with CRUXEval's verdict on {a['agree']} of {a['compared']}"
    if m["missing"]:
        line += f"; {len(m['missing'])} records had no generations"
    out.print(f"{line}; wrote {out_dir}", highlight=False)


export_app = typer.Typer(help="Export a run to other tools.", no_args_is_help=True)
app.add_typer(export_app, name="export")


@export_app.command("lm-eval")
def export_lm_eval(
    run_dir: Annotated[Path, typer.Argument(help="A run directory (runs/<name>) with its data/.")],
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Directory for the task YAMLs, items and utils.py.")],
    in_context: Annotated[bool, typer.Option("--in-context", help="The in-context baseline: the source shown in each prompt.")] = False,
    name: Annotated[Optional[str], typer.Option(help="Task name stem (default: the run's name).")] = None,
) -> None:
    """Write lm-evaluation-harness tasks of the run's evaluation items (direct and CoT, pbb's grader as the metric).

    Then: lm_eval --model hf --model_args pretrained=MODEL --include_path OUT --tasks pbb_<run>
    """
    from pbb.export.lm_eval import describe, export_lm_eval as _export

    summary = _export(run_dir, out_dir, in_context=in_context, name=name)
    out.print(f"wrote {out_dir}: {describe(summary)}", highlight=False, soft_wrap=True)


def main() -> None:
    try:
        app()
    except PbbError as e:
        console.print(f"[red]error:[/red] {escape(str(e))}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        console.print("interrupted; rerun the same command to resume")
        sys.exit(130)


if __name__ == "__main__":
    main()
