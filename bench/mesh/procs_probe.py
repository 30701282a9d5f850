#!/usr/bin/env python3
"""What bench/mesh/procs.sh reads from the running nodes: every node's `status json` over its
control socket (the request `tbnode status --json` sends), one connection per node, judged
together.

  procs_probe.py wait T0 TIMEOUT SINCE STATE_DIR...
      polls every node until the mesh is formed or TIMEOUT seconds after T0 (Unix time, float)
      have passed; prints "graph=S origins=S rounds=K round_s=S" (seconds after T0, or "none").
      graph:   the links every node lists as connected join all nodes into one component (a
               broadcast can reach every node).
      origins: every node holds a verified signed PEER measurement from every other node (the
               peer_matrix rows "from" cover all N - 1 others), made after SINCE (Unix time; 0:
               any). Each node signs one every crosscheck.peer_interval (default 16 s), so this
               is "every node receives every origin's measurements".
  procs_probe.py snap FRESH_S STATE_DIR...
      prints counters summed over the nodes and the shape of the mesh as key=value words.
  procs_probe.py db STATE_DIR...
      prints the summed logical size of the nodes' SQLite databases (page_count * page_size
      as a reader sees it, the WAL's committed pages included) and of their files.
"""
import json
import os
import socket
import sqlite3
import sys
import time


def status(state_dir):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    try:
        s.connect(os.path.join(state_dir, "control.sock"))
        s.sendall(b"status json\n")
        chunks = []
        while True:
            d = s.recv(1 << 16)
            if not d:
                break
            chunks.append(d)
        return json.loads(b"".join(chunks))
    except (OSError, ValueError):
        return None
    finally:
        s.close()


def poll(dirs):
    return [status(d) for d in dirs]


def judge(sts, since, fresh_ms=None):
    """(graph connected, every node has every origin, details)."""
    names = [st["node"] if st else None for st in sts]
    known = [n for n in names if n]
    parent = {n: n for n in known}

    def find(x):
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    degrees, missing = [], 0
    now = time.time()
    for st in sts:
        if not st:
            degrees.append(0)
            missing += len(sts) - 1
            continue
        conn = [p["name"] for p in st.get("peers", []) if p.get("state") == "connected"]
        degrees.append(len(conn))
        for p in conn:
            if p in parent:
                parent[find(p)] = find(st["node"])
        max_age = fresh_ms
        if since > 0:
            max_age = (now - since) * 1000.0
        froms = {
            r["from"]
            for r in st.get("peer_matrix", [])
            if max_age is None or r.get("age_ms", 1 << 62) <= max_age
        }
        froms.discard(st["node"])
        missing += sum(1 for n in known if n != st["node"] and n not in froms)
        missing += len(sts) - len(known)  # nodes that did not answer: unknown origins
    roots = {find(n) for n in known}
    graph = len(known) == len(sts) and len(roots) == 1
    return graph, missing == 0 and len(known) == len(sts), {
        "deg_min": min(degrees) if degrees else 0,
        "deg_mean": sum(degrees) / len(degrees) if degrees else 0.0,
        "missing": missing,
        "components": len(roots),
        "silent": len(sts) - len(known),
    }


def cmd_wait(t0, timeout, since, dirs):
    t_graph = t_orig = None
    rounds, spent = 0, 0.0
    while True:
        a = time.time()
        sts = poll(dirs)
        g, o, _ = judge(sts, since)
        b = time.time()
        rounds += 1
        spent += b - a
        # The state was read during the round: its end is the conservative time.
        if g and t_graph is None:
            t_graph = b - t0
        if o and t_orig is None:
            t_orig = b - t0
        if (t_graph is not None and t_orig is not None) or b - t0 > timeout:
            break
        time.sleep(max(0.0, 0.5 - (b - a)))

    def fmt(t):
        return "none" if t is None else "%.1f" % t

    print("graph=%s origins=%s rounds=%d round_s=%.2f" % (fmt(t_graph), fmt(t_orig), rounds,
                                                         spent / max(rounds, 1)))


def cmd_snap(fresh_s, dirs):
    sts = poll(dirs)
    g, o, d = judge(sts, 0, fresh_s * 1000.0)
    sums = {}
    for st in sts:
        m = (st or {}).get("measurements", {})
        for k in ("sent", "accepted"):
            sums[k] = sums.get(k, 0) + m.get(k, 0)
        for k, v in m.get("dropped", {}).items():
            sums["dropped_" + k] = sums.get("dropped_" + k, 0) + v
        for k in ("broadcasts_delivered", "messages_dropped"):
            sums[k] = sums.get(k, 0) + (st or {}).get(k, 0)
    words = ["graph=%d" % g, "fresh_origins=%d" % o]
    words += ["%s=%s" % (k, ("%.1f" % v) if isinstance(v, float) else v) for k, v in d.items()]
    words += ["%s=%d" % (k, v) for k, v in sorted(sums.items())]
    print(" ".join(words))


def cmd_db(dirs):
    logical = files = 0
    for d in dirs:
        path = os.path.join(d, "tbnode.db")
        for suffix in ("", "-wal"):
            try:
                files += os.path.getsize(path + suffix)
            except OSError:
                pass
        try:
            c = sqlite3.connect("file:%s?mode=ro" % path, uri=True, timeout=5)
            pages = c.execute("PRAGMA page_count").fetchone()[0]
            free = c.execute("PRAGMA freelist_count").fetchone()[0]
            size = c.execute("PRAGMA page_size").fetchone()[0]
            c.close()
            logical += (pages - free) * size
        except sqlite3.Error:
            pass
    print("%d %d" % (logical, files))


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    mode = sys.argv[1]
    if mode == "wait":
        cmd_wait(float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), sys.argv[5:])
    elif mode == "snap":
        cmd_snap(float(sys.argv[2]), sys.argv[3:])
    elif mode == "db":
        cmd_db(sys.argv[2:])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
