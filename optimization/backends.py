"""Two ways to hand the same sparse program to HiGHS: a Pyomo model or highspy directly.

Statuses are labelled with Pyomo's termination-condition names on both paths, with
"optimal" for a proven optimum, so callers and plans read the same words either way.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import highspy
import numpy as np
import pyomo.environ as pyo
from pyomo.contrib.solver.common.factory import SolverFactory
from pyomo.contrib.solver.common.results import SolutionStatus, TerminationCondition
from pyomo.core.expr.numeric_expr import LinearExpression, MonomialTermExpression

from optimization.formulation import LinearProgram
from optimization.problem import Backend, SolverSettings

INFEASIBLE = "provenInfeasible"
UNBOUNDED = "unbounded"
INFEASIBLE_OR_UNBOUNDED = "infeasibleOrUnbounded"
TIME_LIMIT = "maxTimeLimit"  # Pyomo's name for it, which the highspy route reports too


@dataclass(frozen=True)
class Solution:
    values: np.ndarray | None  # one per column, None when HiGHS found no feasible point
    status: str
    build_seconds: float
    solve_seconds: float


def solve_program(program: LinearProgram, settings: SolverSettings, start: np.ndarray | None = None) -> Solution:
    """start: a feasible point (one value per column) HiGHS may begin a MILP's search from; the
    highspy route passes it on, the Pyomo route (its HiGHS interface takes none) searches without."""
    if _backend(settings.backend) == "highspy":
        return _solve_with_highspy(program, settings, start)
    return _solve_with_pyomo(program, settings)


def _backend(backend: Backend) -> Backend:
    if backend not in ("pyomo", "highspy"):
        raise ValueError(f"unknown solver backend {backend!r}; use 'pyomo' or 'highspy'")
    return backend


# --- Pyomo ------------------------------------------------------------------------------------


def build_pyomo_model(program: LinearProgram) -> tuple[pyo.ConcreteModel, list[pyo.Var]]:
    """One Var and Constraint component per block, named as in the formulation.

    Rows are built as LinearExpression objects straight from the sparse matrix, which skips
    Pyomo's operator overloading, its slowest part on models of millions of terms.
    """
    model = pyo.ConcreteModel(name="replenishment")
    columns: list[pyo.Var | None] = [None] * program.n_columns
    for name, ids in program.columns.items():
        component = pyo.Var(
            range(len(ids)),
            domain=_domain(program, ids),
            bounds=_bounds_rule(program.lower[ids], program.upper[ids]),
        )
        model.add_component(name, component)
        for position, column in enumerate(ids.tolist()):
            columns[column] = component[position]
    matrix = program.matrix
    for name, ids in program.rows.items():
        model.add_component(
            name,
            pyo.Constraint(
                range(len(ids)),
                rule=_row_rule(matrix, columns, ids, program.row_lower, program.row_upper),
            ),
        )
    model.total_cost = pyo.Objective(expr=_linear(program.objective, columns), sense=pyo.minimize)
    return model, columns


def _domain(program: LinearProgram, ids: np.ndarray) -> pyo.Set:
    if len(ids) and program.is_integer[ids].all():
        binary = (program.lower[ids] == 0).all() and (program.upper[ids] == 1).all()
        return pyo.Binary if binary else pyo.NonNegativeIntegers
    return pyo.Reals


def _bounds_rule(lower: np.ndarray, upper: np.ndarray):  # noqa: ANN202 - a Pyomo rule
    """One shared bounds pair where a block's bounds agree (cheap), else a rule per variable."""
    lows = [None if not np.isfinite(value) else value for value in lower.tolist()]
    highs = [None if not np.isfinite(value) else value for value in upper.tolist()]
    if len(set(lows)) <= 1 and len(set(highs)) <= 1:
        return (lows[0] if lows else None, highs[0] if highs else None)
    return lambda model, position: (lows[position], highs[position])


def _row_rule(matrix, columns, ids, row_lower, row_upper):  # noqa: ANN001, ANN202 - a Pyomo rule
    indptr, indices, data = matrix.indptr, matrix.indices, matrix.data

    def rule(model: pyo.ConcreteModel, position: int) -> object:
        row = int(ids[position])
        start, end = indptr[row], indptr[row + 1]
        body = LinearExpression(
            [
                MonomialTermExpression((coefficient, columns[column]))
                for coefficient, column in zip(data[start:end].tolist(), indices[start:end].tolist(), strict=False)
            ]
        )
        lower, upper = float(row_lower[row]), float(row_upper[row])
        if lower == upper:
            return body == lower
        return (lower if np.isfinite(lower) else None, body, upper if np.isfinite(upper) else None)

    return rule


def _linear(costs: np.ndarray, columns: list[pyo.Var]) -> LinearExpression:
    nonzero = np.flatnonzero(costs)
    return LinearExpression([MonomialTermExpression((float(costs[c]), columns[c])) for c in nonzero.tolist()])


def _solve_with_pyomo(program: LinearProgram, settings: SolverSettings) -> Solution:
    started = time.perf_counter()
    model, columns = build_pyomo_model(program)
    built = time.perf_counter()
    # Statuses are checked by the caller, not raised by Pyomo, to give plan-level errors.
    results = SolverFactory("highs").solve(
        model,
        load_solutions=False,
        raise_exception_on_nonoptimal_result=False,
        time_limit=settings.time_limit_seconds,
        rel_gap=settings.mip_rel_gap,
        solver_options=dict(settings.options),
    )
    values = None
    if results.solution_status in (SolutionStatus.optimal, SolutionStatus.feasible):
        primals = results.solution_loader.get_vars()
        values = np.array([primals[variable] for variable in columns], dtype=float)
    return Solution(
        values=values,
        status=_pyomo_status(results.termination_condition),
        build_seconds=built - started,
        solve_seconds=time.perf_counter() - built,
    )


def _pyomo_status(termination: TerminationCondition) -> str:
    if termination == TerminationCondition.convergenceCriteriaSatisfied:
        return "optimal"
    return termination.name


# --- highspy ----------------------------------------------------------------------------------


_HIGHS_STATUS = {
    highspy.HighsModelStatus.kOptimal: "optimal",
    highspy.HighsModelStatus.kInfeasible: INFEASIBLE,
    highspy.HighsModelStatus.kUnbounded: UNBOUNDED,
    highspy.HighsModelStatus.kUnboundedOrInfeasible: INFEASIBLE_OR_UNBOUNDED,
    highspy.HighsModelStatus.kTimeLimit: TIME_LIMIT,
    highspy.HighsModelStatus.kIterationLimit: "iterationLimit",
    highspy.HighsModelStatus.kSolutionLimit: "objectiveLimit",
}


def highs_program(program: LinearProgram) -> highspy.HighsLp:
    lp = highspy.HighsLp()
    lp.num_col_ = program.n_columns
    lp.num_row_ = len(program.row_lower)
    lp.col_cost_ = program.objective
    lp.col_lower_ = _highs_infinite(program.lower)
    lp.col_upper_ = _highs_infinite(program.upper)
    lp.row_lower_ = _highs_infinite(program.row_lower)
    lp.row_upper_ = _highs_infinite(program.row_upper)
    by_column = program.matrix.tocsc()
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = by_column.indptr
    lp.a_matrix_.index_ = by_column.indices
    lp.a_matrix_.value_ = by_column.data
    if program.is_integer.any():
        lp.integrality_ = [
            highspy.HighsVarType.kInteger if flag else highspy.HighsVarType.kContinuous
            for flag in program.is_integer.tolist()
        ]
    return lp


def _highs_infinite(values: np.ndarray) -> np.ndarray:
    return np.clip(values, -highspy.kHighsInf, highspy.kHighsInf)


def _solve_with_highspy(program: LinearProgram, settings: SolverSettings, start: np.ndarray | None) -> Solution:
    started = time.perf_counter()
    # The compiled solver, not its Python wrapper: highspy.Highs() registers its callbacks while
    # output_flag is still on, which prints HiGHS's banner to stdout in every process before any option
    # can be set (ERGO-Code/HiGHS#1932: "It can't be switched off independently").  No callback is used.
    highs = highspy._Highs()  # type: ignore[attr-defined]  # exported, though absent from its stubs
    highs.setOptionValue("output_flag", False)
    highs.setOptionValue("time_limit", float(settings.time_limit_seconds))
    highs.setOptionValue("mip_rel_gap", float(settings.mip_rel_gap))
    for name, value in settings.options.items():
        highs.setOptionValue(name, value)  # type: ignore[arg-type]  # HiGHS checks each option's type itself
    highs.passModel(highs_program(program))
    if start is not None and program.is_integer.any():
        incumbent = highspy.HighsSolution()
        incumbent.col_value = start.tolist()
        incumbent.value_valid = True
        highs.setSolution(incumbent)
    built = time.perf_counter()
    highs.run()
    status = highs.getModelStatus()
    label = _HIGHS_STATUS.get(status, highs.modelStatusToString(status))
    has_point = highs.getInfo().primal_solution_status == 2  # kSolutionStatusFeasible
    values = np.array(highs.getSolution().col_value, dtype=float) if has_point else None
    return Solution(
        values=values,
        status=label,
        build_seconds=built - started,
        solve_seconds=time.perf_counter() - built,
    )
