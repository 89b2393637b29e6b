"""Validation of raw tables against the contract: typed output, or violations that name file, column, rule and rows.

``validate_raw_table`` coerces every contract column to its type and evaluates each rule of
``contract.rules_for``. A rule's result lists its violations, each with up to ``max_examples``
offending rows shown as they appear in the source file, so a person can find and fix them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from customer_intel.ingest.contract import RULES, ColumnSpec, TableContract, rules_for
from customer_intel.ingest.reader import SOURCE_FILE, SOURCE_ROW, RawTable

MAX_EXAMPLES = 5


@dataclass
class Violation:
    rule: str
    column: str
    files: list[str]
    n_rows: int
    n_total: int
    detail: str
    examples: list[str] = field(default_factory=list)

    def message(self, asset_name: str) -> str:
        files = ", ".join(self.files)
        head = (
            f"{asset_name}: file {files}, column '{self.column}', rule '{self.rule}' "
            f"({RULES[self.rule]}): {self.detail}"
        )
        if self.n_rows:
            head += f"; {self.n_rows:,} of {self.n_total:,} rows violate it. First {len(self.examples)}:"
        return "\n".join([head, *(f"    {example}" for example in self.examples)])


@dataclass
class RuleResult:
    rule: str
    evaluated: bool
    violations: list[Violation] = field(default_factory=list)
    note: str = ""

    @property
    def passed(self) -> bool:
        return self.evaluated and not self.violations


@dataclass
class ValidationReport:
    table: str
    asset_name: str
    source: str
    n_rows: int
    results: list[RuleResult]
    frame: pd.DataFrame  # typed rows in contract columns (+ extra profile attributes); empty on failure

    @property
    def passed(self) -> bool:
        # Rules are only skipped after another rule failed, or when they do not apply.
        return not self.violations

    @property
    def violations(self) -> list[Violation]:
        return [v for r in self.results for v in r.violations]

    def failure_message(self) -> str:
        blocks = [v.message(self.asset_name) for v in self.violations]
        skipped = [r.rule for r in self.results if not r.evaluated and not r.note.startswith("not applicable")]
        tail = []
        if skipped:
            tail.append(f"Not evaluated until the above is fixed: {', '.join(skipped)}.")
        tail.append(
            "Nothing was written: the last good outputs are untouched. Fix the source file or the "
            "column mapping (resource 'raw_data') and re-run."
        )
        return "\n".join([*blocks, *tail])


def _example_rows(raw: pd.DataFrame, mask: np.ndarray, columns: Iterable[str]) -> list[str]:
    shown = [c for c in columns if c in raw.columns]
    lines = []
    for _, row in raw.loc[mask].head(MAX_EXAMPLES).iterrows():
        path = str(row[SOURCE_FILE])
        where = f"line {int(row[SOURCE_ROW]) + 2}" if path.lower().endswith((".csv", ".csv.gz")) else f"row {int(row[SOURCE_ROW]) + 1}"
        values = ", ".join(f"{c}={row[c]!r}" for c in shown)
        lines.append(f"{where} of {path}: {values}")
    return lines


def _violation(rule: str, column: str, raw: pd.DataFrame, mask: np.ndarray, detail: str, columns: list[str]) -> Violation:
    mask = np.asarray(mask, dtype=bool)
    return Violation(
        rule=rule,
        column=column,
        files=sorted(raw.loc[mask, SOURCE_FILE].astype(str).unique().tolist()),
        n_rows=int(mask.sum()),
        n_total=len(raw),
        detail=detail,
        examples=_example_rows(raw, mask, columns),
    )


def _coerce(spec: ColumnSpec, values: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """Return the typed column and a mask of non-null source values that failed to parse."""
    if values.dtype == object or pd.api.types.is_string_dtype(values):
        stripped = values.astype("string").str.strip()
        values = stripped.mask(stripped == "")  # blank text is a missing value, as in CSV
    was_null = values.isna().to_numpy()
    if spec.kind == "string":
        return values.astype("string"), np.zeros(len(values), dtype=bool)
    if spec.kind == "timestamp":
        if pd.api.types.is_datetime64_any_dtype(values):
            typed = pd.to_datetime(values, utc=True)
        else:
            typed = pd.to_datetime(values, utc=True, errors="coerce", format="ISO8601")
        return typed, typed.isna().to_numpy() & ~was_null
    numeric = pd.to_numeric(values, errors="coerce").astype("float64")
    bad = numeric.isna().to_numpy() & ~was_null
    if spec.kind == "flag":
        not_flag = numeric.notna().to_numpy() & ~numeric.isin([0.0, 1.0]).to_numpy()
        return numeric.where(~not_flag).astype("Int8"), bad | not_flag
    return numeric, bad


def validate_raw_table(
    raw: RawTable,
    contract: TableContract,
    *,
    now: pd.Timestamp,
    known_customer_ids: pd.Index | None = None,
    asset_name: str | None = None,
) -> ValidationReport:
    """Coerce ``raw`` to the contract's types and evaluate every rule that applies to it."""
    asset_name = asset_name or f"raw_{contract.name}"
    rules = rules_for(contract)
    source = raw.describe_source()
    frame = raw.frame
    n = len(frame)
    empty_typed = pd.DataFrame({c.name: pd.Series(dtype="object") for c in contract.columns})

    def report(results: list[RuleResult], typed: pd.DataFrame) -> ValidationReport:
        return ValidationReport(contract.name, asset_name, source, n, results, typed)

    if raw.absent:
        note = "not applicable: the table is not configured, its features are switched off"
        return report([RuleResult(rule, evaluated=False, note=note) for rule in rules], empty_typed)

    results: dict[str, RuleResult] = {rule: RuleResult(rule, evaluated=True) for rule in rules}
    if n == 0:
        results["non_empty"].violations.append(
            Violation("non_empty", "(all)", raw.files, 0, 0, "the file has no data rows")
        )
        for rule in rules[1:]:
            results[rule] = RuleResult(rule, evaluated=False, note="skipped: the table is empty")
        return report(list(results.values()), empty_typed)

    present = set(frame.columns)
    for spec in contract.columns:
        mapped = raw.missing_mapped_columns.get(spec.name)
        # an explicit mapping to a column the file lacks is an error even if a same-named column exists
        if mapped or (spec.required and spec.name not in present):
            detail = (
                f"the column mapping points '{spec.name}' at source column '{mapped}', which is not in the file"
                if mapped
                else f"required column '{spec.name}' is missing"
            )
            found = sorted(c for c in present if not c.startswith("_source_"))
            detail += f" (columns found: {', '.join(found)})"
            results["required_columns"].violations.append(
                Violation("required_columns", spec.name, raw.files, 0, n, detail)
            )
    if results["required_columns"].violations:
        for rule in rules[2:]:
            results[rule] = RuleResult(rule, evaluated=False, note="skipped: required columns are missing")
        return report(list(results.values()), empty_typed)

    key_columns = [c.name for c in contract.columns if c.name in present]
    typed = pd.DataFrame(index=frame.index)
    for spec in contract.columns:
        if spec.name not in present:
            continue
        column, unparsable = _coerce(spec, frame[spec.name])
        typed[spec.name] = column
        if unparsable.any():
            kind = "0 or 1" if spec.kind == "flag" else f"a {spec.kind}"
            results["valid_types"].violations.append(
                _violation("valid_types", spec.name, frame, unparsable, f"values must be {kind}", key_columns)
            )
        if not spec.nullable:
            nulls = frame[spec.name].isna().to_numpy() | (typed[spec.name].isna().to_numpy() & ~unparsable)
            if nulls.any():
                results["non_null_values"].violations.append(
                    _violation("non_null_values", spec.name, frame, nulls, "null or empty values", key_columns)
                )
        if spec.finite:
            infinite = np.isinf(typed[spec.name].to_numpy(dtype="float64", na_value=np.nan))
            if infinite.any():
                results["finite_amounts"].violations.append(
                    _violation("finite_amounts", spec.name, frame, infinite, "infinite values", key_columns)
                )
        if spec.not_in_future:
            future = (typed[spec.name] > now).to_numpy(dtype=bool, na_value=False)
            if future.any():
                detail = f"timestamps after the as-of time {now.isoformat()}"
                results["no_future_timestamps"].violations.append(
                    _violation("no_future_timestamps", spec.name, frame, future, detail, key_columns)
                )

    if contract.keep_extra_columns:
        for column in frame.columns:
            if column not in typed.columns and not column.startswith("_source_"):
                typed[column] = frame[column]

    if contract.no_duplicate_rows:
        dupes = typed[key_columns].duplicated(keep="first").to_numpy()
        if dupes.any():
            results["no_duplicate_rows"].violations.append(
                _violation("no_duplicate_rows", "(all)", frame, dupes, "exact repeats of an earlier row", key_columns)
            )
    if contract.unique_key:
        dupes = typed.duplicated(subset=list(contract.unique_key), keep=False).to_numpy()
        dupes &= typed[list(contract.unique_key)].notna().all(axis=1).to_numpy()
        if dupes.any():
            column = ",".join(contract.unique_key)
            results["unique_customer_ids"].violations.append(
                _violation("unique_customer_ids", column, frame, dupes, "ids that appear on more than one row", key_columns)
            )
    if contract.ids_must_be_known:
        if known_customer_ids is None:
            results["known_customer_ids"] = RuleResult(
                "known_customer_ids", evaluated=False, note="not applicable: neither customers nor transactions are configured"
            )
        else:
            ids = typed["customer_id"]
            unknown = (ids.notna() & ~ids.isin(known_customer_ids)).to_numpy()
            if unknown.any():
                results["known_customer_ids"].violations.append(
                    _violation(
                        "known_customer_ids", "customer_id", frame, unknown,
                        "ids not found in raw_customers or raw_transactions", key_columns,
                    )
                )

    ordered = list(results.values())
    ok = not any(r.violations for r in ordered)
    return report(ordered, typed.reset_index(drop=True) if ok else empty_typed)
