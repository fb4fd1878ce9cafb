# The baselines of `weir bench search`'s ANN section: hnswlib and faiss on the vectors Weir
# indexes, in a child process, one thread. Weir writes the rows and queries as little-endian
# float32 files; this prints one JSON object (build seconds, memory, and per sweep value the
# search seconds), and writes each sweep value's result ids (int64, nq x k) beside the
# queries, so that Weir computes every recall against one ground truth.
import json, os, resource, sys, time

def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()

def main():
    a = json.loads(sys.argv[1])
    import numpy as np
    base = np.fromfile(a["base"], dtype=np.float32).reshape(-1, a["dim"])
    qs = np.fromfile(a["queries"], dtype=np.float32).reshape(-1, a["dim"])[: a.get("nq", 1 << 30)]
    k, lib = a["k"], a["lib"]
    before = rss()
    out = {"lib": lib, "sweep": []}
    if lib == "hnswlib":
        import hnswlib
        ix = hnswlib.Index(space="l2", dim=a["dim"])
        ix.init_index(max_elements=len(base), ef_construction=a["efc"], M=a["M"], random_seed=1)
        ix.set_num_threads(1)
        t = time.perf_counter()
        ix.add_items(base, num_threads=1)
        out["build_s"] = time.perf_counter() - t
        def search(ef):
            ix.set_ef(max(ef, k))
            return ix.knn_query(qs, k=k, num_threads=1)[0]
    else:
        import faiss
        faiss.omp_set_num_threads(1)
        kind = a["kind"]
        if kind == "hnsw":
            ix = faiss.IndexHNSWFlat(a["dim"], a["M"])
            ix.hnsw.efConstruction = a["efc"]
        elif kind == "ivf":
            quant = faiss.IndexFlatL2(a["dim"])
            ix = faiss.IndexIVFFlat(quant, a["dim"], a["nlist"])
        else:
            ix = faiss.IndexFlatL2(a["dim"])
        t = time.perf_counter()
        if kind == "ivf":
            ix.train(base)
        ix.add(base)
        out["build_s"] = time.perf_counter() - t
        def search(p):
            if kind == "hnsw":
                ix.hnsw.efSearch = max(p, k)
            elif kind == "ivf":
                ix.nprobe = p
            else:
                # One query at a time, as Weir's exact search is measured: a batch would be a
                # matrix product, another algorithm.
                return np.vstack([ix.search(qs[i:i + 1], k)[1] for i in range(len(qs))])
            return ix.search(qs, k)[1]
    out["mem_bytes"] = rss() - before
    for p in a["sweep"]:
        t = time.perf_counter()
        ids = search(p)
        el = time.perf_counter() - t
        path = "%s.%s.%s.%d.ids" % (a["queries"], lib, a.get("kind", ""), p)
        np.ascontiguousarray(ids, dtype=np.int64).tofile(path)
        out["sweep"].append({"param": p, "seconds": el, "ids": path})
    print(json.dumps(out))

main()
