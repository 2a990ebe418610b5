"""medfeat beyond one machine's memory and one process: dask benchmarks.

1. Out of core: a volume (and a 2-D image, for Canny) stored as a .npy file of a few GB, read chunk
   by chunk through a memory map, filtered on a LocalCluster whose per-worker memory limit is far
   below the array's size: Sobel and a grey opening (3-D) and Canny (2-D). Reported: wall time,
   throughput, and each worker's peak resident memory (sampled every 10 ms, a fresh cluster for
   each kernel, so the peak is that kernel's), against the in-memory kernel on a size that
   fits, in the same run: both warmed up (the dask route on two chunks per axis), alternating,
   best of ``--repeat``.
2. Many files: FeatureExtractor.transform_files on N DICOM files written from pydicom's real CT
   and MR slices with varied pixel data (seeded shifts, crops, contrast and noise), on 1 and 2
   local worker processes: files/s and scaling efficiency.

3. Sizes that fit (``--only fits``): Sobel, opening and Canny in memory against the same array on
   a LocalCluster, alternating in one run: end to end (chunks read from disk by the workers, the
   result into the client) and in worker memory (chunks already held by the workers, the result
   left there), with CPU seconds, tasks by kind and bytes moved between workers.

Run (results go to benchmarks/results/dask-<date>.md, by hand)::

    nice -n 10 python benchmarks/bench_dask.py --volume-gb 2.5 --image-gb 2 --files 2000
    nice -n 10 python benchmarks/bench_dask.py --only fits --image-side 8192
"""

from __future__ import annotations

import argparse
import functools
import os
import shutil
import sys
import tempfile
import time

import numpy as np

GIB = 1 << 30


class NpyFile:
    """A .npy file read slice by slice through a fresh memory map: what dask needs of an array
    (shape, dtype, ndim, ``__getitem__``), picklable by its path, so that workers read their own
    chunks from disk and nothing the size of the file is ever sent or held."""

    def __init__(self, path):
        self.path = str(path)
        m = np.load(self.path, mmap_mode="r")
        self.shape, self.dtype, self.ndim = m.shape, m.dtype, m.ndim

    def __getitem__(self, index):
        m = np.load(self.path, mmap_mode="r")
        out = np.array(m[index])
        del m
        return out


def _write_npy(path, shape, dtype, seed):
    """A smooth random field with noise (real-looking structure for edges and morphology),
    written slab by slab so the writer never holds the whole array either: one smoothed slab,
    rolled by a random shift and rescaled for each slab, plus fresh noise."""
    from scipy import ndimage as ndi

    rng = np.random.default_rng(seed)
    out = np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=shape)
    step = 32 if len(shape) == 3 else 2048
    base = ndi.uniform_filter(rng.standard_normal((step, *shape[1:]), np.float32), 5) * 4
    for a in range(0, shape[0], step):
        b = min(shape[0], a + step)
        shift = tuple(int(v) for v in rng.integers(0, 64, base.ndim))
        slab = np.roll(base, shift, axis=tuple(range(base.ndim)))[: b - a]
        slab = slab * np.float32(rng.uniform(0.8, 1.2))
        slab += np.float32(0.05) * rng.standard_normal(slab.shape, np.float32)
        out[a:b] = slab
    out.flush()
    del out


def _warm(ndim):
    """Run each kernel once on a small array in a worker: imports and Numba's cache loads are
    then not counted in the timings."""
    import numpy as np

    from medfeat import kernels as K

    small = np.random.default_rng(0).random((16,) * ndim).astype(np.float32)
    K.sobel(small)
    K.opening(small, K.ball(1) if ndim == 3 else K.disk(1))
    if ndim == 2:
        K.canny(small)
        K.canny(np.random.default_rng(0).random((1024, 1024)).astype(np.float32))  # tiled route
    return True


def _start_peak(dask_worker):
    """Start sampling this worker's resident memory every 10 ms (``getrusage``'s maximum is no
    use here: Linux carries it over from the parent into spawned processes)."""
    import threading

    import psutil

    proc = psutil.Process()
    state = {"peak": proc.memory_info().rss, "run": True}

    def sample():
        while state["run"]:
            state["peak"] = max(state["peak"], proc.memory_info().rss)
            time.sleep(0.01)

    threading.Thread(target=sample, daemon=True).start()
    dask_worker._medfeat_peak = state


def _stop_peak(dask_worker):
    state = dask_worker._medfeat_peak
    state["run"] = False
    return state["peak"] / 2**20


def _cpu_seconds():
    """User and system CPU seconds of this process so far (a worker's, through client.run)."""
    t = os.times()
    return t.user + t.system


def _rss_mib():
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def _load():
    return "{:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def bench_large(args, tmp):
    import dask.array as da
    from distributed import Client, LocalCluster

    from medfeat import kernels as K

    nz = max(64, int(args.volume_gb * GIB / (4 * 1024 * 1024)))
    vol_shape = (nz, 1024, 1024)
    side = int(np.sqrt(args.image_gb * GIB / 4))
    side -= side % 1024
    img_shape = (side, side)
    vol_path, img_path = os.path.join(tmp, "volume.npy"), os.path.join(tmp, "image.npy")
    t = time.perf_counter()
    _write_npy(vol_path, vol_shape, np.float32, 0)
    _write_npy(img_path, img_shape, np.float32, 1)
    print(f"wrote {vol_shape} and {img_shape} float32 ({args.volume_gb + args.image_gb:.1f} "
          f"GB) in {time.perf_counter() - t:.0f} s", file=sys.stderr)

    c3, c2 = args.chunks3d, args.chunks2d
    cases = [
        ("sobel", 3, lambda x: K.sobel(x), c3),
        ("opening ball(1)", 3, lambda x: K.opening(x, K.ball(1)), c3),
        ("canny sigma=2", 2, lambda x: K.canny(x, sigma=2.0), c2),
    ]
    limit = args.worker_memory
    rows = []
    for name, ndim, fn, chunks in cases:
        src = NpyFile(vol_path if ndim == 3 else img_path)
        fits = tuple(min(s, c) for s, c in zip(src.shape, (128, 1024, 1024) if ndim == 3
                                                else (8192, 8192)))
        small = src[tuple(slice(0, f) for f in fits)]
        part = tuple(slice(0, f) for f in fits)
        # in memory, in this process (two Numba threads), on the size that fits
        # compile / load the cache, on a slice large enough for the kernels' multi-threaded
        # route (small images take a single-threaded one, compiled separately)
        fn(small[tuple(slice(0, 64 if ndim == 3 else 1024) for _ in range(ndim))])
        # a fresh cluster per kernel: the peak is that kernel's
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                          memory_limit=limit, dashboard_address=":0",
                          env={"NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}) as cluster, \
                Client(cluster) as client:
            client.run(_warm, ndim)
            lazy = da.from_array(src, chunks=chunks, asarray=False)
            # the dask route's first call is not timed either, as the in-memory kernel's is not
            # (the chunk kernels' cache loads in the workers, imports in this process): two
            # chunks per axis of the same array
            fn(lazy[tuple(slice(0, min(f, 2 * c)) for f, c in zip(fits, chunks))]).sum(
                dtype=np.float64).compute()
            # in memory and dask alternately on the size that fits, best of --repeat
            t_mem, t_small, same = [], [], True
            for _ in range(args.repeat):
                t = time.perf_counter()
                ref = fn(small)
                t_mem.append(time.perf_counter() - t)
                ref_sum = float(np.asarray(ref, np.float64).sum())
                del ref
                t = time.perf_counter()
                dsum = float(fn(lazy[part]).sum(dtype=np.float64).compute())
                t_small.append(time.perf_counter() - t)
                same = same and (dsum == ref_sum if name.startswith("canny") else
                                 abs(dsum - ref_sum) <= 1e-6 * abs(ref_sum))
            print(f"{name}: in memory {[round(v, 3) for v in t_mem]} s, dask "
                  f"{[round(v, 3) for v in t_small]} s", file=sys.stderr)
            t_mem, t_small = min(t_mem), min(t_small)
            del small
            base = client.run(_rss_mib)
            client.run(_start_peak)
            load = _load()
            t = time.perf_counter()
            total = fn(lazy).sum(dtype=np.float64).compute()
            t_big = time.perf_counter() - t
            peak = client.run(_stop_peak)
        n_small, n_big = int(np.prod(fits)), int(np.prod(src.shape))
        chunk_mib = int(np.prod(chunks)) * 4 / 2**20
        rows.append((name, src.shape, chunks, chunk_mib, n_small / t_mem / 1e6,
                     n_small / t_small / 1e6, n_big / t_big / 1e6, t_big,
                     max(base.values()), max(peak.values()), same, load, float(total)))
        print(rows[-1], file=sys.stderr)
    print(f"\n### Out of core (worker memory limit {limit}, 2 workers x 1 thread)\n")
    print("| kernel | array (float32) | chunks | chunk MiB | in memory Mpx/s (fits) | dask, same "
          "array, Mpx/s | dask / in memory | dask, large array, Mpx/s | large: wall s | worker "
          "RSS after warm-up MiB | worker peak RSS MiB | same sum | load |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|")
    for (name, shape, chunks, cmib, r_mem, r_small, r_big, t_big, base, peak, same, load,
         _) in rows:
        gb = np.prod(shape) * 4 / 1e9
        print(f"| {name} | {'x'.join(map(str, shape))} ({gb:.1f} GB) | "
              f"{'x'.join(map(str, chunks))} | {cmib:.0f} | {r_mem:.0f} | {r_small:.0f} | "
              f"{r_small / r_mem:.2f} | {r_big:.0f} | {t_big:.1f} | {base:.0f} | {peak:.0f} | "
              f"{same} | {load} |")
    os.unlink(vol_path)
    os.unlink(img_path)


def _stream_summary(stream):
    """Tasks of a run by kind (dask's key prefix): how many, and their summed compute seconds."""
    from collections import defaultdict

    kinds = defaultdict(lambda: [0, 0.0])
    for t in stream:
        key = t["key"][0] if isinstance(t["key"], tuple) else str(t["key"])
        kind = kinds[key.rsplit("-", 1)[0][:40]]
        kind[0] += 1
        kind[1] += sum(s["stop"] - s["start"] for s in t["startstops"] if s["action"] == "compute")
    return dict(kinds)


def _incoming_bytes(dask_worker, since):
    """Bytes this worker fetched from other workers since ``since`` (its clock)."""
    return sum(e["total"] for e in dask_worker.transfer_incoming_log if e["start"] >= since)


def _dask_run(client, fn, lazy, where):
    """One timed dask run of ``fn(lazy)``: ``where`` 'client' computes the result into this
    process, 'sum' only its sum (float64), 'workers' persists it on the workers and waits (the
    result stays where it was computed, as the in-memory kernel's stays in its process). Returns
    wall s, CPU s (the workers' and this process's, which holds the scheduler), the result (or
    None), tasks by kind and MiB fetched between workers."""
    from distributed import wait

    before = sum(client.run(_cpu_seconds).values())
    since = time.time()
    t, c = time.perf_counter(), time.process_time()
    out = fn(lazy)
    if where == "client":
        got = out.compute()
    elif where == "sum":
        got = float(out.sum(dtype=np.float64).compute())
    else:
        got = None
        kept = out.persist()
        wait(kept)
    wall = time.perf_counter() - t
    cpu = time.process_time() - c + sum(client.run(_cpu_seconds).values()) - before
    moved = sum(client.run(_incoming_bytes, since=since).values()) / 2**20
    kinds = _stream_summary(client.get_task_stream(start=since))
    if where == "workers":
        del kept
    del out
    return wall, cpu, got, kinds, moved


def _same(name, got, ref):
    """The dask result against the in-memory one: bit for bit, or (Sobel) within 1e-6; a sum
    against the in-memory array's sum, within 1e-6 (Sobel) or 1e-12 of the sum of magnitudes
    (the chunked sum adds in another order)."""
    if isinstance(got, float):
        scale = float(np.abs(ref, dtype=np.float64).sum())
        ref = float(np.asarray(ref, np.float64).sum())
        return abs(got - ref) <= (1e-6 if name.startswith("sobel") else 1e-12) * scale
    if name.startswith("sobel"):
        return bool(np.allclose(got, ref, rtol=1e-6, atol=1e-7))
    return bool(np.array_equal(got, ref))


def _compare(name, fn, path, chunks, args, warm_ndim, end="client"):
    """``fn`` in memory (this process, two Numba threads) against a LocalCluster of 2 workers x 1
    thread on the array of ``path`` (a size that fits), alternating, best of ``--repeat``. Two dask
    figures: 'end to end' reads the chunks from the .npy file on the workers and computes the
    result into this process (``end='sum'``: only its sum, as the out-of-core runs do, for a
    float result too large to gather cheaply); 'in worker memory' starts from the chunks already
    held by the workers and leaves the result there (the analog of the in-memory call, whose input
    and output stay in the process that computes). CPU seconds count every process, so on a
    shared machine they say more than the wall clock."""
    import dask.array as da
    from distributed import Client, LocalCluster, wait

    src = NpyFile(path)
    image = src[tuple(slice(None) for _ in src.shape)]
    # compile / load the cache on a slice large enough for the multi-threaded routes
    fn(image[tuple(slice(0, 64 if image.ndim == 3 else 1024) for _ in image.shape)])
    rows = {"in memory": [], "end to end": [], "in worker memory": []}
    same, loads, kinds, moved = True, [], {}, {}
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                      env={"NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}) as cluster, \
            Client(cluster) as client:
        client.run(_warm, warm_ndim)
        lazy = da.from_array(src, chunks=chunks, asarray=False)
        held = da.from_array(src, chunks=chunks, asarray=False,
                             name="held-" + name.split()[0]).persist()
        wait(held)
        _dask_run(client, fn, held, "workers")  # the chunk kernels' first call in the workers
        for _ in range(args.repeat):
            loads.append(_load())
            t, c = time.perf_counter(), time.process_time()
            ref = fn(image)
            rows["in memory"].append((time.perf_counter() - t, time.process_time() - c))
            for label, arr, where in (("end to end", lazy, end),
                                      ("in worker memory", held, "workers")):
                wall, cpu, got, k, mib = _dask_run(client, fn, arr, where)
                rows[label].append((wall, cpu))
                if got is not None:
                    same = same and _same(name, got, ref)
                    del got
                if wall <= min(w for w, _ in rows[label]):
                    kinds[label], moved[label] = k, mib
        del held
    best = {k: min(v) for k, v in rows.items()}
    print(f"all runs, {name}: " + "; ".join(
        f"{k} {[round(w, 2) for w, _ in v]} s (CPU {[round(c, 2) for _, c in v]})"
        for k, v in rows.items()), file=sys.stderr)
    return dict(name=name, shape=src.shape, chunks=chunks, best=best, same=same, loads=loads,
                kinds=kinds, moved=moved, end="sum" if end == "sum" else "array")


def _print_compare(results, repeat):
    print(f"\n### In memory against a LocalCluster (2 workers x 1 thread), same run, best of "
          f"{repeat}\n")
    print("| kernel | array (float32) | chunks | in memory s | dask end to end s (result) | "
          "ratio | dask "
          "in worker memory s | ratio | CPU s in memory / end to end / in worker memory | "
          "tasks | MiB between workers | same | load before each repeat |")
    print("|---|---|---|---:|---:|---:|---:|---:|---|---:|---:|---|---|")
    for r in results:
        (tm, cm), (te, ce), (tw, cw) = (r["best"][k] for k in ("in memory", "end to end",
                                                                "in worker memory"))
        tasks = sum(n for n, _ in r["kinds"]["end to end"].values())
        print(f"| {r['name']} | {'x'.join(map(str, r['shape']))} | "
              f"{'x'.join(map(str, r['chunks']))} | {tm:.2f} | {te:.2f} ({r['end']}) | "
              f"{tm / te:.2f} | "
              f"{tw:.2f} | {tm / tw:.2f} | {cm:.2f} / {ce:.2f} / {cw:.2f} | {tasks} | "
              f"{r['moved']['end to end']:.0f} | {r['same']} | {'; '.join(r['loads'])} |")
    print("\nTasks of the fastest end-to-end run by kind (count, summed compute s, wall clock of "
          "the worker threads):\n")
    for r in results:
        kinds = sorted(r["kinds"]["end to end"].items(), key=lambda kv: -kv[1][1])
        print(f"- {r['name']}: " + ", ".join(f"{k} {n} ({s:.2f} s)" for k, (n, s) in kinds))


def bench_canny(args, tmp):
    """Canny on an image that fits (``--image-side``, chunked by ``--chunks2d``): the in-memory
    kernel against the same array on a LocalCluster (:func:`_compare`), or, with ``--scheduler
    threads``, on dask's threaded scheduler in this process (two threads: no process boundary,
    the kernels run side by side without the GIL); the edge maps compared pixel for pixel."""
    import dask.array as da

    from medfeat import kernels as K

    side = args.image_side
    path = os.path.join(tmp, "canny.npy")
    _write_npy(path, (side, side), np.float32, 1)
    fn = functools.partial(_canny2, K=K)
    if args.scheduler == "cluster":
        _print_compare([_compare("canny sigma=2", fn, path, args.chunks2d, args, 2)],
                       args.repeat)
        os.unlink(path)
        return
    import dask

    src = NpyFile(path)
    image = src[:, :]
    fn(image[:1024, :1024])
    lazy = da.from_array(src, chunks=args.chunks2d, asarray=False)
    t_mem, t_dask, same = [], [], True
    with dask.config.set(scheduler="threads", num_workers=2):
        for _ in range(args.repeat):
            t = time.perf_counter()
            ref = fn(image)
            t_mem.append(time.perf_counter() - t)
            t = time.perf_counter()
            same = same and np.array_equal(fn(lazy).compute(), ref)
            t_dask.append(time.perf_counter() - t)
    os.unlink(path)
    print(f"\n### Canny sigma=2 on {side}x{side} float32, chunks "
          f"{'x'.join(map(str, args.chunks2d))}, dask's threaded scheduler, 2 threads, best of "
          f"{args.repeat} (load {_load()})\n")
    print("| in memory s | dask s | dask / in memory | same edges |")
    print("|---:|---:|---:|---|")
    print(f"| {min(t_mem):.2f} | {min(t_dask):.2f} | {min(t_mem) / min(t_dask):.2f} | {same} |")


def _canny2(x, K):
    return K.canny(x, sigma=2.0)


def _sobel(x, K):
    return K.sobel(x)


def _opening(x, K):
    return K.opening(x, K.ball(1))


def bench_fits(args, tmp):
    """Sobel and opening ball(1) on a 128x1024x1024 volume (``--chunks3d``) and Canny on an
    ``--image-side`` image (``--chunks2d``), each in memory against a LocalCluster in the same
    run (:func:`_compare`)."""
    from medfeat import kernels as K

    vol, img = os.path.join(tmp, "fits3d.npy"), os.path.join(tmp, "fits2d.npy")
    _write_npy(vol, (128, 1024, 1024), np.float32, 0)
    _write_npy(img, (args.image_side,) * 2, np.float32, 1)
    results = []
    for name, fn, path, chunks, ndim, end in (
            ("sobel", _sobel, vol, args.chunks3d, 3, "sum"),
            ("opening ball(1)", _opening, vol, args.chunks3d, 3, "sum"),
            ("canny sigma=2", _canny2, img, args.chunks2d, 2, "client")):
        results.append(_compare(name, functools.partial(fn, K=K), path, chunks, args, ndim,
                                end))
    _print_compare(results, args.repeat)
    os.unlink(vol)
    os.unlink(img)


def _write_dicoms(folder, n, seed):
    """``n`` DICOM files from pydicom's CT_small and MR_small with varied pixel data: seeded
    shifts, contrast, noise and a random bright blob, same size and header as the originals."""
    import warnings

    import pydicom
    from pydicom.data import get_testdata_file

    rng = np.random.default_rng(seed)
    bases = [pydicom.dcmread(get_testdata_file(f)) for f in ("CT_small.dcm", "MR_small.dcm")]
    paths = []
    for k in range(n):
        ds = bases[k % 2].copy()
        arr = ds.pixel_array.astype(np.float64)
        arr = np.roll(arr, tuple(rng.integers(-8, 9, 2)), axis=(0, 1))
        arr = arr * rng.uniform(0.8, 1.2) + rng.normal(0, 10, arr.shape)
        r, c = rng.integers(10, arr.shape[0] - 10, 2)
        yy, xx = np.ogrid[:arr.shape[0], :arr.shape[1]]
        arr[(yy - r) ** 2 + (xx - c) ** 2 < rng.integers(9, 64)] += rng.uniform(50, 300)
        info = np.iinfo(ds.pixel_array.dtype)
        ds.PixelData = np.clip(np.round(arr), info.min, info.max).astype(
            ds.pixel_array.dtype).tobytes()
        ds.SOPInstanceUID = pydicom.uid.generate_uid(entropy_srcs=[str(seed), str(k)])
        p = os.path.join(folder, f"im{k:05d}.dcm")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds.save_as(p)
        paths.append(p)
    return paths


def bench_files(args, tmp):
    from distributed import Client, LocalCluster

    from medfeat.features import FeatureExtractor

    folder = os.path.join(tmp, "dicoms")
    os.makedirs(folder)
    t = time.perf_counter()
    paths = _write_dicoms(folder, args.files, 0)
    print(f"wrote {len(paths)} DICOM files in {time.perf_counter() - t:.0f} s", file=sys.stderr)
    rows, outputs = [], {}
    for workers in (1, 2):
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               dashboard_address=":0")
        client = Client(cluster)
        try:
            fx = FeatureExtractor(scheduler=client)
            fx.transform_files(paths[:4 * workers])  # warm-up: imports and Numba cache loads
            load0 = _load()
            t = time.perf_counter()
            F, read = fx.transform_files(paths)
            wall = time.perf_counter() - t
            rows.append((workers, len(read), wall, len(read) / wall, load0, _load()))
            outputs[workers] = F
        finally:
            client.close()
            cluster.close()
        print(rows[-1], file=sys.stderr)
    same = np.array_equal(outputs[1], outputs[2])
    print(f"\n### Many files ({args.files} DICOM files, 128x128 CT and 64x64 MR, all 8 families, "
          f"88 features)\n")
    print("| workers | files | wall s | files/s | scaling efficiency | load before -> after |")
    print("|---:|---:|---:|---:|---:|---|")
    rate1 = rows[0][3]
    for workers, n, wall, rate, l0, l1 in rows:
        print(f"| {workers} | {n} | {wall:.1f} | {rate:.0f} | {rate / (workers * rate1):.2f} | "
              f"{l0} -> {l1} |")
    print(f"\nSame feature matrix on 1 and 2 workers: {same}")


def _shape(text):
    return tuple(int(v) for v in text.split(","))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--volume-gb", type=float, default=2.5, help="size of the 3-D volume")
    ap.add_argument("--image-gb", type=float, default=2.0, help="size of the 2-D image (Canny)")
    ap.add_argument("--worker-memory", default="1.5GiB", help="memory limit of each worker")
    ap.add_argument("--chunks3d", type=_shape, default=(32, 512, 512), metavar="Z,Y,X")
    ap.add_argument("--chunks2d", type=_shape, default=(2048, 2048), metavar="Y,X")
    ap.add_argument("--files", type=int, default=2000)
    ap.add_argument("--only", choices=("large", "files", "canny", "fits"),
                    help="one part; 'canny' is Canny alone on an image that fits "
                         "(--image-side), in memory against dask; 'fits' is Sobel, opening "
                         "and Canny on sizes that fit, in memory against a LocalCluster")
    ap.add_argument("--image-side", type=int, default=4096,
                    help="side of the image of --only canny")
    ap.add_argument("--repeat", type=int, default=3,
                    help="runs of each (best taken): the sizes that fit, in memory and on dask")
    ap.add_argument("--scheduler", choices=("cluster", "threads"), default="cluster",
                    help="--only canny: a LocalCluster of 2 processes (default) or dask's "
                         "threaded scheduler in this process")
    ap.add_argument("--tmp", default=tempfile.gettempdir())
    args = ap.parse_args(argv)
    tmp = tempfile.mkdtemp(prefix="medfeat-bench-dask-", dir=args.tmp)
    print(f"machine: {os.cpu_count()} CPUs; load {_load()}; {time.strftime('%Y-%m-%d %H:%M')}")
    try:
        if args.only in (None, "large"):
            bench_large(args, tmp)
        if args.only in (None, "files"):
            bench_files(args, tmp)
        if args.only == "canny":
            bench_canny(args, tmp)
        if args.only == "fits":
            bench_fits(args, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
