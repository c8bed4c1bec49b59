"""The contract's finding rules in Python, for the API tests: a reference
the server's answers are compared with (extensions.md, "Finding leads",
"Follow-ups across leads", "Pipeline summary"). Independent of the
server's code: only the rules are shared."""

import datetime as dt
from decimal import Decimal

STAGES = ["new", "contacted", "qualified", "proposal", "negotiation"]
STATUSES = ["active", "inactive", "converted", "lost"]


def fold_char(c):
    """Unicode simple case folding of one character: the full folding where
    it is one character, else the lowercase mapping where that is one, else
    the character (CaseFolding.txt's statuses C and S)."""
    full = c.casefold()
    if len(full) == 1:
        return full
    lower = c.lower()
    return lower if len(lower) == 1 else c


def fold(s):
    return "".join(fold_char(c) for c in s)


def dec(v):
    return None if v is None else Decimal(str(v))


def iso(ts):
    """A response timestamp as a datetime."""
    return dt.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.timezone.utc)


def one_of(params, name):
    v = params.get(name)
    if v is None:
        return None
    return v if isinstance(v, (list, tuple)) else [x for x in str(v).split(",")]


def lead_keeps(a, params, facts):
    """Whether lead attributes a pass the filters of params (the query as a
    dict); facts: the lead's derived facts (overdue, open: booleans)."""
    for name, attr in (("stage", "stage"), ("status", "status"), ("source", "source")):
        vals = one_of(params, name)
        if vals is not None and a[attr] not in vals:
            return False
    for name in ("account_id", "contact_id"):
        vals = one_of(params, name)
        if vals is None:
            continue
        ids = {v.lower() for v in vals if v != "null"}
        if not (a[name] in ids or (a[name] is None and "null" in vals)):
            return False
    value = dec(a["value"])
    if "value_min" in params and (value is None or value < Decimal(str(params["value_min"]))):
        return False
    if "value_max" in params and (value is None or value > Decimal(str(params["value_max"]))):
        return False
    p = a["probability"]
    if "probability_min" in params and (p is None or p < int(params["probability_min"])):
        return False
    if "probability_max" in params and (p is None or p > int(params["probability_max"])):
        return False
    for name, attr, inclusive in (("created_from", "created_at", True), ("created_to", "created_at", False),
                                  ("updated_from", "updated_at", True), ("updated_to", "updated_at", False)):
        if name in params:
            at, bound = iso(a[attr]), dt.datetime.fromisoformat(params[name].replace("Z", "+00:00"))
            if (at < bound) if inclusive else (at >= bound):
                return False
    if "search" in params:
        term = fold(params["search"].strip())
        if term not in fold(a["name"]) and (a["source"] is None or term not in fold(a["source"])):
            return False
    for name, fact in (("has_overdue", "overdue"), ("has_open_follows", "open")):
        if name in params and facts[fact] != (params[name] == "true"):
            return False
    return True


def lead_sort_value(a, field):
    if field == "name":
        return fold(a["name"])
    if field == "value":
        return dec(a["value"])
    if field == "stage":
        return STAGES.index(a["stage"])
    return a[field]


def sort_leads(leads, sort):
    """leads: resource objects; sort: the sort parameter (None: default)."""
    keys = [(s.lstrip("-"), s.startswith("-")) for s in (sort or "-created_at").split(",")]
    if not any(f == "created_at" for f, _ in keys):
        keys.append(("created_at", True))
    keys.append(("id", True))
    out = list(leads)
    for field, desc in reversed(keys):
        get = (lambda o: o["id"]) if field == "id" else (lambda o, f=field: lead_sort_value(o["attributes"], f))
        out.sort(key=lambda o: (get(o) is None, get(o) if get(o) is not None else 0), reverse=desc)
        out.sort(key=lambda o: get(o) is None)  # unset last in both directions
    return out


def follow_status(a, now):
    if a["status"] == "pending" and a["due_date"] is not None and iso(a["due_date"]) < now:
        return "overdue"
    return a["status"]


def sort_follows(follows, sort):
    keys = [(s.lstrip("-"), s.startswith("-")) for s in (sort or "due_date").split(",")]
    for tie in ("due_date", "created_at"):
        if not any(f == tie for f, _ in keys):
            keys.append((tie, False))
    keys.append(("id", False))
    out = list(follows)
    for field, desc in reversed(keys):
        get = (lambda o: o["id"]) if field == "id" else (lambda o, f=field: o["attributes"][f])
        out.sort(key=lambda o: (get(o) is None, get(o) if get(o) is not None else ""), reverse=desc)
        out.sort(key=lambda o: get(o) is None)
    return out
