#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
# journal-fields.py JSON-FILE NAME: the journal entries (journalctl -o json) of one
# device hold vfiod's "assigned" line with the fields vfiod(8) documents.
import json
import sys

entries = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
assigned = [e for e in entries if ": assigned" in str(e.get("MESSAGE", ""))]
if not assigned:
    sys.exit("no assigned line among %d entries" % len(entries))
e = assigned[0]
want = {"VFIOD_KIND": "pci", "VFIOD_NAME": sys.argv[2], "VFIOD_OPERATION": "assign",
        "SYSLOG_IDENTIFIER": "vfiod", "PRIORITY": "6"}
for k, v in want.items():
    if e.get(k) != v:
        sys.exit("%s=%r, not %r, in %s" % (k, e.get(k), v, json.dumps(e)))
if not str(e.get("VFIOD_CALLER", "")).startswith(":1."):
    sys.exit("no VFIOD_CALLER in %s" % json.dumps(e))
print("fields: " + " ".join("%s=%s" % (k, e[k]) for k in sorted(e) if k.startswith("VFIOD_")))
