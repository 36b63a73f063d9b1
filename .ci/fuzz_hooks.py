"""Schemathesis hooks for chronicle's API fuzzing (.ci/fuzz-api).

One check, `chronicle_rejections_are_explained`, and a tally of answers.

The document states every rule of a request that a schema can state. The rest depend
on the log (an entity must be registered, a statement must be about streams the log
holds, an amendment must point at an event of the stream and change it, an id may not be reused for other content, an event at a place (or a new
stop's `after`) must be at a stop of its trip, which a trip's stream with no events yet
has none of) or relate two values (an interval
must not end before it starts; on a stream's route, the body's type and stream must fit
the path). Schemathesis' own "schema-valid request rejected" check (ST202) is told to
let 400 and 422 through on the operations where such rules apply (.ci/schemathesis.toml);
this check then fails any such rejection of a schema-valid request whose message is
not one of those rules, so that a document looser than the server still fails the run.
"""

import atexit
import collections
import json
import os
import threading

import schemathesis

# Substrings of the server's messages for rules that no schema can state.
LOG_OR_RELATION_RULES = {
    "POST /events": [
        "is not registered",
        "is already registered",
        "not a stop of",
        # A stop is added once: whether the trip has it depends on the log.
        "already has this stop",
        "has this stop as",
        "already has a stop at",
        "has no stops yet",
        "has no events yet, and a trip's stream begins with trip.announced",
        "no event with id",
        "the target ",
        "is already in the log",
        "is already used, with different content",
        "the corrected data must fit",
        # Whether a correction changes anything depends on its target's current data
        # and date in the log (a correction applied once, sent again, changes nothing).
        "the correction changes nothing",
        "events have no date to correct",
        "ends before it starts",
        "end begins before its start",
        # Free text that happens to hold a template's `<placeholder>`.
        "is a placeholder of a `chronicle types show` template",
        "more than the limit of",
        # A correction's patch is free-form: its currency is checked by the server.
        "field `data.data.value.currency`",
        # A sale's seller and buyer are two values; a correction's patch is free-form.
        "a sale is between two parties",
        "name at least one item sold",
        # A statement's `about` names streams the log holds.
        "the log holds no stream",
    ],
    # known_at, and the from/to window.
    "GET /timeline": [
        "ends before it starts",
        "end begins before its start",
        # A stream and a category, each valid, that no stream has both of.
        "nothing could match both",
    ],
}
# `known_at` is an extent: an interval in it must not end before it starts.
for _label in ["GET /trips", "GET /trips/{stream}", "GET /entities", "GET /entities/{entity}", "GET /sales"]:
    LOG_OR_RELATION_RULES[_label] = ["ends before it starts", "end begins before its start"]
LOG_OR_RELATION_RULES["POST /streams/{stream}/events"] = LOG_OR_RELATION_RULES[
    "POST /events"
] + [
    # The path names the stream; the body's type (and stream, when given) must fit it.
    "is not the stream in the path",
    "belongs in",
    # entity.registered in a country's stream named by the path.
    "is built in",
    "If-Match says",
]

_lock = threading.Lock()
_answers = collections.Counter()
_positive_rejections = collections.Counter()


@schemathesis.check
def chronicle_rejections_are_explained(ctx, response, case):
    label = f"{case.method.upper()} {case.path}"
    status = response.status_code
    meta = case.meta
    positive = meta is not None and meta.generation.mode.is_positive
    with _lock:
        _answers[(label, status)] += 1
    if not positive or status not in (400, 422):
        return None
    try:
        message = response.json().get("error", "")
    except Exception:
        message = response.text
    allowed = LOG_OR_RELATION_RULES.get(label, [])
    if any(rule in message for rule in allowed):
        with _lock:
            _positive_rejections[(label, status, next(r for r in allowed if r in message))] += 1
        return None
    raise AssertionError(
        f"a request valid per the document was refused ({status}) for a reason the "
        f"document could state: {message}"
    )


def _write_tally():
    path = os.environ.get("CHRONICLE_FUZZ_TALLY")
    if not path:
        return
    answers = collections.defaultdict(dict)
    for (label, status), n in sorted(_answers.items()):
        answers[label][str(status)] = n
    rejections = [
        {"operation": label, "status": status, "rule": rule, "count": n}
        for (label, status, rule), n in sorted(_positive_rejections.items())
    ]
    with open(path, "w") as f:
        json.dump({"answers": answers, "positive_rejections_by_rule": rejections}, f, indent=1)


atexit.register(_write_tally)
