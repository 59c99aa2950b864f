"""Executes a parsed template the way the reference's runtime does (common/jinja/runtime.cpp).

jinja2 parses (see ``template.py``); this module walks jinja2's AST with the reference's
semantics, one method per node kind, each citing the reference statement it mirrors.  No Python
attribute of any value is ever reached: attribute access only sees object keys and the builtin
tables of ``builtins.py``, which is what makes the renderer safe by construction.
"""

from __future__ import annotations

import math
import time
from typing import Any

from jinja2 import nodes

from ..errors import TemplateError
from .builtins import GLOBALS, Args, builtins_of, test_in
from .values import (
    UNDEFINED,
    EngineError,
    Func,
    JStr,
    Kwarg,
    NotImplementedInEngine,
    Obj,
    TemplateSandboxError,
    Undefined,
    as_bool,
    as_float,
    as_int,
    as_string,
    blen,
    dec,
    enc,
    equal,
    is_arr,
    is_float,
    is_int,
    is_num,
    is_obj,
    is_str,
    is_undef,
    mk,
    obj_get,
    obj_insert,
    to_int64,
    type_name,
)


class BudgetExceeded(TemplateError):
    """Rendering ran past its time or size budget (pyggml's guard; the reference has none)."""

    kind = "budget"


class Budget:
    """Time and size limits of one render, checked at every statement and loop step.

    The time is the rendering thread's CPU time (``time.thread_time``), not the wall clock: a
    render gets the same budget on an idle machine and on a loaded one, so whether a template
    renders does not depend on what else the machine is doing."""

    __slots__ = ("deadline", "max_bytes", "max_items", "_tick")

    def __init__(self, timeout: float, max_bytes: int, max_items: int) -> None:
        self.deadline = time.thread_time() + timeout
        self.max_bytes = max_bytes
        self.max_items = max_items
        self._tick = 0

    def step(self) -> None:
        self._tick += 1
        if (self._tick & 63) == 0 and time.thread_time() > self.deadline:
            raise BudgetExceeded("template rendering exceeded its time budget")

    def charge(self, items: int) -> None:
        if items > self.max_items:
            raise BudgetExceeded(f"template tried to build {items} items (budget {self.max_items})")
        self.step()

    def charge_bytes(self, n: int) -> None:
        if n > self.max_bytes:
            raise BudgetExceeded(f"template tried to build a {n}-byte string (budget {self.max_bytes})")


class Root:
    __slots__ = ("budget", "current_time")

    def __init__(self, budget: Budget, current_time: float) -> None:
        self.budget = budget
        self.current_time = current_time


class Context:
    """llama.cpp: runtime.h struct context — a new scope copies its parent's variables."""

    __slots__ = ("env", "root")

    def __init__(self, root: Root, parent: Context | None = None) -> None:
        self.root = root
        if parent is None:
            self.env: dict[str, Any] = {"true": True, "True": True, "false": False, "False": False,
                                        "none": None, "None": None}
        else:
            self.env = dict(parent.env)

    def get(self, name: str) -> Any:
        return self.env.get(name, UNDEFINED)


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


_CMP = {"eq": "==", "ne": "!=", "lt": "<", "gt": ">", "lteq": "<=", "gteq": ">=",
        "in": "in", "notin": "not in"}
_ARITH = {nodes.Add: "+", nodes.Sub: "-", nodes.Mul: "*", nodes.Div: "/", nodes.Mod: "%",
          nodes.FloorDiv: "//", nodes.Pow: "**"}
_FILTER_ALIAS = {"count": "length", "d": "default", "e": "escape", "trim": "strip"}
_CONST_STR: dict[str, JStr] = {}
_COERCE_TO_STRING = {"capitalize", "lower", "replace", "strip", "title", "upper", "wordcount"}


def gather(val: Any, parts: list[tuple[str, bool]]) -> None:
    """llama.cpp: runtime.h gather_string_parts_recursive — strings keep their parts, numbers
    and bools print, arrays recurse, anything else (none, undefined, objects) prints nothing."""
    t = type(val)
    if t is JStr:
        parts.extend(val.parts)
    elif t is int or t is float or t is bool:
        parts.extend(as_string(val).parts)
    elif t is list or t is tuple:
        for x in val:
            gather(x, parts)


def _fdiv(a: float, b: float) -> float:
    if b == 0.0:
        if a == 0.0 or math.isnan(a):
            return math.nan
        return math.copysign(math.inf, a) * math.copysign(1.0, b)
    return a / b


def _fmod(a: float, b: float) -> float:
    if b == 0.0 or math.isinf(a):
        return math.nan
    return math.fmod(a, b)


class Stats:
    """Usage statistics of values (llama.cpp: value_t::stats_t, collected when
    ``context::is_get_stats``): which values a render touched and with which operations."""

    def __init__(self) -> None:
        self._by_id: dict[int, tuple[Any, set[str]]] = {}

    def mark(self, v: Any, op: str | None = None, deep: bool = False) -> None:
        entry = self._by_id.get(id(v))
        if entry is None:
            entry = self._by_id[id(v)] = (v, set())  # holding v keeps its id unique
        if op is not None:
            entry[1].add(op)
        if deep:
            if type(v) in (list, tuple):
                for x in v:
                    self.mark(x, deep=True)
            elif type(v) is Obj:
                for k, x in v.items():
                    self.mark(k, deep=True)
                    self.mark(x, deep=True)

    def used(self, v: Any) -> bool:
        return id(v) in self._by_id

    def ops(self, v: Any) -> set[str]:
        entry = self._by_id.get(id(v))
        return entry[1] if entry is not None else set()


_DEEP_MARKING = {"tojson", "string"}


class Runtime:
    def __init__(self, root: Root, stats: Stats | None = None) -> None:
        self.root = root
        self.budget = root.budget
        self.stats = stats

    # --- statements -------------------------------------------------------------------------

    def exec_statements(self, body: list[nodes.Node], ctx: Context) -> JStr:
        # llama.cpp: runtime.cpp exec_statements
        parts: list[tuple[str, bool]] = []
        for stmt in body:
            gather(self.execute(stmt, ctx), parts)
        return self._joined(parts)

    def _joined(self, parts: list[tuple[str, bool]]) -> JStr:
        s = JStr.join_parts(parts)
        self.budget.charge_bytes(len(s))
        return s

    def execute(self, node: nodes.Node, ctx: Context) -> Any:
        self.budget.step()
        meth = _DISPATCH.get(type(node))
        if meth is None:
            raise NotImplementedInEngine(f"unsupported template construct: {type(node).__name__}")
        return meth(self, node, ctx)

    def x_Output(self, node: nodes.Output, ctx: Context) -> Any:
        # a jinja2 Output groups what the reference keeps as separate statements
        if len(node.nodes) == 1:
            return self.execute(node.nodes[0], ctx)
        return [self.execute(n, ctx) for n in node.nodes]

    def x_TemplateData(self, node: nodes.TemplateData, ctx: Context) -> Any:
        return mk(node.data)

    def x_If(self, node: nodes.If, ctx: Context) -> Any:
        # llama.cpp: runtime.cpp if_statement::execute_impl (no new scope)
        if as_bool(self.execute(node.test, ctx)):
            return self.exec_statements(node.body, ctx)
        for elif_ in node.elif_:
            if as_bool(self.execute(elif_.test, ctx)):
                return self.exec_statements(elif_.body, ctx)
        return self.exec_statements(node.else_, ctx)

    def x_For(self, node: nodes.For, ctx: Context) -> Any:
        # llama.cpp: runtime.cpp for_statement::execute_impl
        if node.recursive:
            raise NotImplementedInEngine("recursive loops are not supported by the reference")
        scope = Context(self.root, ctx)
        iterable = self.execute(node.iter, scope)
        if self.stats is not None:
            self.stats.mark(iterable, "array_access")
        if is_undef(iterable):
            iterable = []
        if not (is_arr(iterable) or is_obj(iterable)):
            raise EngineError("Expected iterable or object type in for loop: got " + type_name(iterable))
        is_object = is_obj(iterable)
        if self.stats is not None:
            self.stats.mark(iterable, "object_access" if is_object else "array_access")
        items = [(k, v) for k, v in iterable.items()] if is_object else list(iterable)
        target = node.target
        selected: list[tuple[Any, Any]] = []  # (current, what the loop variable(s) bind)
        for item in items:
            self.budget.step()
            if isinstance(target, nodes.Name):
                current = item[0] if is_object else item
                binding: Any = ("name", target.name, current)
            elif isinstance(target, nodes.Tuple):
                current = item
                if not is_arr(current):
                    raise EngineError("Cannot unpack non-iterable type: " + type_name(current))
                if len(target.items) != len(current):
                    raise EngineError("Too " + ("few" if len(target.items) > len(current) else "many")
                                      + " items to unpack")
                binding = ("tuple", target.items, current)
            else:
                raise EngineError("Invalid loop variable(s)")
            if node.test is not None:
                loop_scope = Context(self.root, scope)
                self._bind(loop_scope, binding)
                if not as_bool(self.execute(node.test, loop_scope)):
                    continue
            selected.append((current, binding))
        result: list[Any] = []
        no_iteration = True
        n = len(selected)
        for i, (_, binding) in enumerate(selected):
            self.budget.step()
            loop = Obj(builtins=False)
            for k, v in (("index", i + 1), ("index0", i), ("revindex", n - i), ("revindex0", n - i - 1),
                         ("first", i == 0), ("last", i == n - 1), ("length", n),
                         ("previtem", selected[i - 1][0] if i > 0 else Undefined("previtem")),
                         ("nextitem", selected[i + 1][0] if i < n - 1 else Undefined("nextitem"))):
                obj_insert(loop, mk(k), v)
            scope.env["loop"] = loop
            self._bind(scope, binding)
            try:
                for stmt in node.body:
                    result.append(self.execute(stmt, scope))
            except _Continue:
                continue
            except _Break:
                break
            # quirk of the reference: a loop left by `continue`/`break` never clears this flag
            no_iteration = False
        if no_iteration:
            for stmt in node.else_:
                result.append(self.execute(stmt, ctx))
        parts: list[tuple[str, bool]] = []
        gather(result, parts)
        return self._joined(parts)

    @staticmethod
    def _bind(ctx: Context, binding: Any) -> None:
        kind, target, value = binding
        if kind == "name":
            ctx.env[target] = value
        else:
            for t, v in zip(target, value, strict=True):
                if not isinstance(t, nodes.Name):
                    raise EngineError("Cannot unpack non-identifier type")
                ctx.env[t.name] = v

    def x_Break(self, node: nodes.Break, ctx: Context) -> Any:
        raise _Break()

    def x_Continue(self, node: nodes.Continue, ctx: Context) -> Any:
        raise _Continue()

    def x_Assign(self, node: nodes.Assign, ctx: Context) -> Any:
        return self._assign(node.target, self.execute(node.node, ctx), ctx)

    def x_AssignBlock(self, node: nodes.AssignBlock, ctx: Context) -> Any:
        if node.filter is not None:
            raise NotImplementedInEngine("filtered set blocks are not supported by the reference")
        return self._assign(node.target, self.exec_statements(node.body, ctx), ctx)

    def _assign(self, target: nodes.Node, rhs: Any, ctx: Context) -> Any:
        # llama.cpp: runtime.cpp set_statement::execute_impl
        if isinstance(target, nodes.Name):
            ctx.env[target.name] = rhs
        elif isinstance(target, nodes.Tuple):
            if not is_arr(rhs):
                raise EngineError("Cannot unpack non-iterable type in set: " + type_name(rhs))
            if len(rhs) != len(target.items):
                raise EngineError("Too " + ("few" if len(target.items) > len(rhs) else "many")
                                  + " items to unpack in set")
            for t, v in zip(target.items, rhs, strict=True):
                if not isinstance(t, nodes.Name):
                    raise EngineError("Cannot unpack to non-identifier in set")
                ctx.env[t.name] = v
        elif isinstance(target, nodes.NSRef):
            obj = ctx.get(target.name)
            if is_undef(obj):
                obj = self._identifier(target.name, ctx)
            if not is_obj(obj):
                raise EngineError("Cannot assign to member of non-object")
            obj_insert(obj, mk(target.attr), rhs)
        else:
            raise EngineError("Invalid LHS inside assignment expression")
        return UNDEFINED

    def x_Macro(self, node: nodes.Macro, ctx: Context) -> Any:
        # llama.cpp: runtime.cpp macro_statement::execute_impl — the body runs in a scope copied
        # from the *caller's* context (dynamic scoping)
        params = self._params(node.args, node.defaults)
        name = node.name

        def call(args: Args) -> JStr:
            mctx = Context(self.root, args.ctx)
            self._bind_parameters(name, params, args, mctx)
            return self.exec_statements(node.body, mctx)

        ctx.env[name] = Func(name, call)
        return UNDEFINED

    @staticmethod
    def _params(args: list[nodes.Name], defaults: list[nodes.Expr]) -> list[tuple[str, Any]]:
        first_default = len(args) - len(defaults)
        return [(a.name, defaults[i - first_default] if i >= first_default else None)
                for i, a in enumerate(args)]

    def _bind_parameters(self, name: str, params: list[tuple[str, Any]], args: Args, ctx: Context) -> None:
        # llama.cpp: runtime.cpp bind_parameters — kwargs count as inputs (a quirk: m(b=2)
        # for m(a, b=1) binds a to undefined and b to its default)
        n_in = args.count()
        for i, (pname, dflt) in enumerate(params):
            if i < n_in:
                ctx.env[pname] = args.kwarg_or_pos(pname, i)
            elif dflt is not None:
                ctx.env[pname] = self.execute(dflt, args.ctx)
            else:
                raise EngineError(f"Not enough arguments provided to '{name}'")

    def x_CallBlock(self, node: nodes.CallBlock, ctx: Context) -> Any:
        # llama.cpp: runtime.cpp call_statement::execute_impl
        call = node.call
        callee = self.execute(call.node, ctx)
        if type(callee) is not Func:
            raise EngineError("Callee is not a function: got " + type_name(callee))
        caller_ctx = Context(self.root, ctx)
        params = self._params(node.args, node.defaults)

        def caller(args: Args) -> JStr:
            bctx = Context(self.root, caller_ctx)
            self._bind_parameters("caller", params, args, bctx)
            return self.exec_statements(node.body, bctx)

        call_ctx = Context(self.root, ctx)
        call_ctx.env["caller"] = Func("caller", caller)
        args = self._call_args(call, ctx)
        return self._invoke(callee, Args(args, call_ctx))

    def x_FilterBlock(self, node: nodes.FilterBlock, ctx: Context) -> Any:
        # llama.cpp: runtime.cpp filter_statement::execute_impl
        body = self.exec_statements(node.body, ctx)
        return self._apply_filter(node.filter, body, ctx)

    def x_Scope(self, node: nodes.Scope, ctx: Context) -> Any:
        raise NotImplementedInEngine("unsupported template construct: Scope")

    # --- expressions -------------------------------------------------------------------------

    def x_Const(self, node: nodes.Const, ctx: Context) -> Any:
        v = node.value
        if isinstance(v, str):
            # a literal is template text; JStr values are immutable, so one object can serve
            # every evaluation (usage statistics only ever look at input values)
            cached = _CONST_STR.get(v)
            if cached is None:
                cached = _CONST_STR[v] = mk(v)
                if len(_CONST_STR) > 4096:
                    _CONST_STR.clear()
            return cached
        if v is None or type(v) in (bool, int, float):
            if type(v) is int and not -(2**63) <= v < 2**63:
                raise EngineError("integer literal out of range")
            return v
        raise EngineError(f"unsupported literal {v!r}")

    def x_Name(self, node: nodes.Name, ctx: Context) -> Any:
        return self._identifier(node.name, ctx)

    def _identifier(self, name: str, ctx: Context) -> Any:
        # llama.cpp: runtime.cpp identifier::execute_impl — variables, then global builtins
        v = ctx.env.get(name, UNDEFINED)
        if not is_undef(v):
            if self.stats is not None:
                self.stats.mark(v)
            return v
        fn = GLOBALS.get(name)
        if fn is not None:
            return Func(name, fn)
        return Undefined(name)

    def x_List(self, node: nodes.List, ctx: Context) -> Any:
        return [self.execute(x, ctx) for x in node.items]

    def x_Tuple(self, node: nodes.Tuple, ctx: Context) -> Any:
        return tuple(self.execute(x, ctx) for x in node.items)

    def x_Dict(self, node: nodes.Dict, ctx: Context) -> Any:
        out = Obj()
        for pair in node.items:
            k = self.execute(pair.key, ctx)
            v = self.execute(pair.value, ctx)
            obj_insert(out, k, v)
        return out

    def x_Keyword(self, node: nodes.Keyword, ctx: Context) -> Any:
        return Kwarg(node.key, self.execute(node.value, ctx))

    def x_CondExpr(self, node: nodes.CondExpr, ctx: Context) -> Any:
        if as_bool(self.execute(node.test, ctx)):
            return self.execute(node.expr1, ctx)
        if node.expr2 is None:
            return UNDEFINED  # select_expression without else
        return self.execute(node.expr2, ctx)

    def x_And(self, node: nodes.And, ctx: Context) -> Any:
        left = self.execute(node.left, ctx)
        return self.execute(node.right, ctx) if as_bool(left) else left

    def x_Or(self, node: nodes.Or, ctx: Context) -> Any:
        left = self.execute(node.left, ctx)
        return left if as_bool(left) else self.execute(node.right, ctx)

    def x_Not(self, node: nodes.Not, ctx: Context) -> Any:
        return not as_bool(self.execute(node.node, ctx))

    def x_Neg(self, node: nodes.Neg, ctx: Context) -> Any:
        v = self.execute(node.node, ctx)
        if is_int(v):
            return to_int64(-float(v)) if v == -(2**63) else -v
        if is_float(v):
            return -v
        raise EngineError("Unary - operator requires numeric operand")

    def x_Pos(self, node: nodes.Pos, ctx: Context) -> Any:
        v = self.execute(node.node, ctx)
        if is_num(v):
            return v
        raise EngineError("Unary + operator requires numeric operand")

    def _binop_node(self, node: nodes.BinExpr, ctx: Context) -> Any:
        op = _ARITH[type(node)]
        left = self.execute(node.left, ctx)
        right = self.execute(node.right, ctx)
        return self.binop(op, left, right)

    x_Add = x_Sub = x_Mul = x_Div = x_Mod = x_FloorDiv = x_Pow = _binop_node

    def x_Concat(self, node: nodes.Concat, ctx: Context) -> Any:
        # jinja2 flattens a ~ b ~ c; the reference folds it left
        acc = self.execute(node.nodes[0], ctx)
        for n in node.nodes[1:]:
            acc = self.binop("~", acc, self.execute(n, ctx))
        return acc

    def x_Compare(self, node: nodes.Compare, ctx: Context) -> Any:
        # the reference has no comparison chains: a < b < c is (a < b) < c
        acc = self.execute(node.expr, ctx)
        for operand in node.ops:
            acc = self.binop(_CMP[operand.op], acc, self.execute(operand.expr, ctx))
        return acc

    def binop(self, op: str, left: Any, right: Any) -> Any:
        """llama.cpp: runtime.cpp binary_expression::execute_impl (after and/or)."""
        if op == "==":
            return equal(left, right)
        if op == "!=":
            return not equal(left, right)
        l_null = left is None or is_undef(left)
        r_null = right is None or is_undef(right)

        def concat_null() -> Any:
            if (l_null and is_str(right)) or (r_null and is_str(left)):
                ls = mk("") if l_null else as_string(left)
                rs = mk("") if r_null else as_string(right)
                return ls.append(rs)
            return None

        if is_undef(left) or is_undef(right):
            if is_undef(right) and op in ("in", "not in"):
                return op == "not in"
            if op in ("+", "~"):
                res = concat_null()
                if res is not None:
                    return res
            raise EngineError(f"Cannot perform operation {op} on undefined values")
        if left is None or right is None:
            if right is not None and op in ("in", "not in"):
                member = test_in(Args([left, right], None))
                return member if op == "in" else not member
            if op in ("+", "~"):
                res = concat_null()
                if res is not None:
                    return res
            raise EngineError("Cannot perform operation on null values")
        if is_num(left) and is_num(right):
            a, b = as_float(left), as_float(right)
            both_int = not (is_float(left) or is_float(right))
            if op in ("+", "-", "*"):
                r = a + b if op == "+" else (a - b if op == "-" else a * b)
                return to_int64(r) if both_int else r
            if op == "/":
                return _fdiv(a, b)
            if op == "%":
                r = _fmod(a, b)
                return to_int64(r) if both_int else r
            if op == "<":
                return a < b
            if op == ">":
                return a > b
            if op == ">=":
                return a >= b
            if op == "<=":
                return a <= b
        if is_arr(left) and is_arr(right):
            if op == "+":
                self.budget.charge(len(left) + len(right))
                return list(left) + list(right)
        elif is_arr(right):
            if op in ("in", "not in"):
                member = test_in(Args([left, right], None))
                return member if op == "in" else not member
        if (is_str(left) or is_str(right)) and op in ("~", "+"):
            ls, rs = as_string(left), as_string(right)
            self.budget.charge_bytes(len(ls) + len(rs))
            self.budget.charge(len(ls.parts) + len(rs.parts))
            return ls.append(rs)
        if op == "*" and ((is_str(left) and is_int(right)) or (is_int(left) and is_str(right))):
            s = left if is_str(left) else right
            n = right if is_int(right) else left
            if n <= 0:
                return JStr("", [])
            self.budget.charge_bytes(blen(s) * n)
            self.budget.charge(len(s.parts) * n)
            return JStr(str(s) * n, s.parts * n)
        if is_str(left) and is_str(right) and op in ("in", "not in"):
            member = test_in(Args([left, right], None))
            return member if op == "in" else not member
        if is_obj(right) and op in ("in", "not in"):
            member = test_in(Args([left, right], None))
            return member if op == "in" else not member
        raise EngineError(f'Unknown operator "{op}" between {type_name(left)} and {type_name(right)}')

    # --- member access, calls, filters, tests -------------------------------------------------

    def _try_builtin(self, name: str, value: Any, undef_on_missing: bool) -> Any:
        # llama.cpp: runtime.cpp try_builtin_func
        if self.stats is not None:
            self.stats.mark(value, name)
        fn = builtins_of(value).get(name)
        if fn is not None:
            return Func(name, fn, value)
        if undef_on_missing:
            return Undefined(name)
        raise EngineError(f"Unknown (built-in) filter '{name}' for type {type_name(value)}")

    def x_Getattr(self, node: nodes.Getattr, ctx: Context) -> Any:
        obj = self.execute(node.node, ctx)
        prop = node.attr
        _refuse_dunder(prop)
        # the reference: a builtin of the object's type wins over a key of the same name
        val = self._try_builtin(prop, obj, True)
        if not is_undef(val):
            return val
        return self._member(obj, mk(prop))

    def x_Getitem(self, node: nodes.Getitem, ctx: Context) -> Any:
        obj = self.execute(node.node, ctx)
        if isinstance(node.arg, nodes.Slice):
            return self._slice(obj, node.arg, ctx)
        prop = self.execute(node.arg, ctx)
        if is_str(prop):
            _refuse_dunder(str(prop))
        return self._member(obj, prop)

    def _slice(self, obj: Any, s: nodes.Slice, ctx: Context) -> Any:
        size = len(obj) if is_arr(obj) else (blen(str(obj)) if is_str(obj) else 0)
        step = self.execute(s.step, ctx) if s.step is not None else 1
        neg = as_int(step) < 0
        start = self.execute(s.start, ctx) if s.start is not None else (size - 1 if neg else 0)
        stop = self.execute(s.stop, ctx) if s.stop is not None else (-1 if neg else size)
        fn = self._try_builtin("slice", obj, False)
        return self._invoke(fn, Args([start, stop, step], ctx))

    def _member(self, obj: Any, prop: Any) -> Any:
        # llama.cpp: runtime.cpp member_expression::execute_impl (after the builtin lookup)
        val: Any = Undefined("object_property")
        if is_undef(prop):
            return val
        if type(prop) in (list, Obj, Func) or (type(prop) is tuple and not _tuple_hashable(prop)):
            raise EngineError("Type: " + type_name(prop) + " is not allowed as object key")
        if is_undef(obj):
            return val
        val = self._member_value(obj, prop, val)
        if self.stats is not None:
            self.stats.mark(val)
            self.stats.mark(prop)
            if is_obj(obj) or type(prop) in (JStr, float, list) or prop is None:
                self.stats.mark(obj, "object_access")
            elif type(prop) in (int, bool):
                self.stats.mark(obj, "array_access")
            else:
                self.stats.mark(obj)
        return val

    def _member_value(self, obj: Any, prop: Any, val: Any) -> Any:
        if is_obj(obj):
            val = obj_get(obj, prop, val)
            if is_undef(val):
                val = self._try_builtin(str(as_string(prop)) if is_str(prop) else _key_text(prop), obj, True)
            return val
        if is_arr(obj) or is_str(obj):
            if is_int(prop) or type(prop) is bool:
                i = int(prop)
                if is_arr(obj):
                    if i < 0:
                        i += len(obj)
                    if 0 <= i < len(obj):
                        val = obj[i]
                else:
                    b = enc(str(obj))
                    if 0 <= i < len(b):
                        val = mk(dec(b[i:i + 1]))
            elif is_str(prop):
                val = self._try_builtin(str(prop), obj, True)
            return val
        if not is_str(prop):
            raise EngineError("Cannot access property with non-string: got " + type_name(prop))
        return self._try_builtin(str(prop), obj, True)

    def _call_args(self, call: nodes.Call, ctx: Context) -> list[Any]:
        if call.dyn_args is not None or call.dyn_kwargs is not None:
            raise NotImplementedInEngine("*args/**kwargs in calls are not supported")
        args = [self.execute(a, ctx) for a in call.args]
        args += [Kwarg(k.key, self.execute(k.value, ctx)) for k in call.kwargs]
        return args

    def x_Call(self, node: nodes.Call, ctx: Context) -> Any:
        # llama.cpp: runtime.cpp call_expression::execute_impl — arguments first, then the callee
        args = self._call_args(node, ctx)
        callee = self.execute(node.node, ctx)
        if type(callee) is not Func:
            raise EngineError("Callee is not a function: got " + type_name(callee))
        return self._invoke(callee, Args(args, ctx))

    def _invoke(self, fn: Func, args: Args) -> Any:
        # llama.cpp: value_func_t::invoke — the bound value goes first
        if self.stats is not None and fn.name in _DEEP_MARKING and (fn.bound or args.args):
            self.stats.mark(fn.this if fn.bound else args.args[0], deep=True)
        if fn.bound:
            args = Args([fn.this] + args.args, args.ctx, fn.name)
        else:
            args = Args(args.args, args.ctx, fn.name)
        return fn.fn(args)

    def x_Filter(self, node: nodes.Filter, ctx: Context) -> Any:
        value = self.execute(node.node, ctx) if node.node is not None else UNDEFINED
        return self._apply_filter(node, value, ctx)

    def _apply_filter(self, node: nodes.Filter, value: Any, ctx: Context) -> Any:
        # llama.cpp: runtime.cpp apply_filter
        name = _FILTER_ALIAS.get(node.name, node.name)
        _refuse_dunder(name)
        if not node.args and not node.kwargs and node.dyn_args is None and node.dyn_kwargs is None:
            if not is_undef(value) and not is_str(value) and name in _COERCE_TO_STRING:
                value = JStr.join_parts(as_string(value).parts)
            fn = self._try_builtin(name, value, False)
            return self._invoke(fn, Args([], ctx))
        args = self._call_args(node, ctx)  # type: ignore[arg-type]
        fn = self._try_builtin(name, value, False)
        return self._invoke(fn, Args(args, ctx))

    def x_Test(self, node: nodes.Test, ctx: Context) -> Any:
        # llama.cpp: runtime.cpp test_expression::execute_impl
        value = self.execute(node.node, ctx)
        args = [value] + self._call_args(node, ctx)  # type: ignore[arg-type]
        fn = GLOBALS.get("test_is_" + node.name)
        if fn is None:
            raise EngineError(f"Unknown test '{node.name}'")
        if self.stats is not None:
            self.stats.mark(value, "test_is_" + node.name)
        return fn(Args(args, ctx, "test_is_" + node.name))


def _tuple_hashable(t: tuple) -> bool:
    return all(type(x) not in (list, Obj, Func) and (type(x) is not tuple or _tuple_hashable(x)) for x in t)


def _key_text(v: Any) -> str:
    try:
        return str(as_string(v))
    except EngineError:
        return ""


def _refuse_dunder(name: str) -> None:
    """pyggml's SSTI guard: names like ``__class__`` never reach a value (the reference would
    answer them with undefined; no real template uses them)."""
    if name.startswith("__") and name.endswith("__") or name in ("mro", "func_globals", "gi_frame"):
        raise TemplateSandboxError(f"access to {name!r} is refused (template sandbox)")


# node class -> Runtime method (x_<NodeName>)
_DISPATCH: dict[type, Any] = {
    getattr(nodes, name[2:]): meth for name, meth in vars(Runtime).items()
    if name.startswith("x_") and hasattr(nodes, name[2:])
}
