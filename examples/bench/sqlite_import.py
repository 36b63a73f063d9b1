"""What a user might write instead of `chronicle import`: Python's sqlite3 inserting
the events of a JSON Lines file in batches into a table with chronicle's unique
indexes, WAL, synchronous=FULL (every commit fsynced). The benchmark runs it beside
`chronicle import` on the same file (examples/bench/main.rs).

    python3 examples/bench/sqlite_import.py EVENTS.jsonl STORE.db [BATCH]
"""

import json
import sqlite3
import sys
import uuid

path, db_path = sys.argv[1], sys.argv[2]
batch_size = int(sys.argv[3]) if len(sys.argv) > 3 else 1000

db = sqlite3.connect(db_path)
db.execute("PRAGMA journal_mode=WAL")
db.execute("PRAGMA synchronous=FULL")
db.execute(
    """CREATE TABLE IF NOT EXISTS events (
        position INTEGER PRIMARY KEY,
        id BLOB NOT NULL UNIQUE,
        stream TEXT NOT NULL,
        version INTEGER NOT NULL,
        type TEXT NOT NULL,
        json TEXT NOT NULL,
        UNIQUE (stream, version))"""
)
versions = dict(db.execute("SELECT stream, max(version) FROM events GROUP BY stream"))
insert = "INSERT INTO events (id, stream, version, type, json) VALUES (?, ?, ?, ?, ?)"
batch, count = [], 0
with open(path, encoding="utf-8") as lines:
    for line in lines:
        line = line.strip()
        if not line or line.startswith("//"):
            continue
        event = json.loads(line)
        stream = event["stream"]
        version = versions.get(stream, 0) + 1
        versions[stream] = version
        given = event.get("id")
        event_id = uuid.UUID(given) if given else uuid.uuid4()
        batch.append((event_id.bytes, stream, version, event["type"], line))
        if len(batch) == batch_size:
            with db:
                db.executemany(insert, batch)
            count += len(batch)
            batch = []
if batch:
    with db:
        db.executemany(insert, batch)
    count += len(batch)
db.close()
print(count)
