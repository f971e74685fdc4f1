#!/usr/bin/python3
"""The classic comparison's Python downloaders, for bench/run.sh.

usage: py_clients.py MODE WORKERS LIST OUTDIR
MODE: seq (one requests.Session), thread (ThreadPoolExecutor, a Session per thread),
      process (multiprocessing.Pool, a Session per process), aiohttp (one ClientSession,
      WORKERS concurrent requests). Each URL is saved as OUTDIR/<last path segment>.
"""
import asyncio
import concurrent.futures
import multiprocessing
import os
import sys
import threading

import requests

_local = threading.local()


def _session():
    s = getattr(_local, "s", None)
    if s is None:
        s = _local.s = requests.Session()
    return s


def fetch(args):
    url, out = args
    r = _session().get(url)
    r.raise_for_status()
    with open(os.path.join(out, url.rsplit("/", 1)[-1]), "wb") as f:
        f.write(r.content)
    return len(r.content)


async def fetch_all_aiohttp(urls, out, workers):
    import aiohttp

    conn = aiohttp.TCPConnector(limit=workers)
    total = 0
    async with aiohttp.ClientSession(connector=conn) as session:
        queue = asyncio.Queue()
        for u in urls:
            queue.put_nowait(u)

        async def worker():
            nonlocal total
            while not queue.empty():
                u = queue.get_nowait()
                async with session.get(u) as r:
                    r.raise_for_status()
                    body = await r.read()
                with open(os.path.join(out, u.rsplit("/", 1)[-1]), "wb") as f:
                    f.write(body)
                total += len(body)

        await asyncio.gather(*(worker() for _ in range(workers)))
    return total


def main():
    mode, workers, listfile, out = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    urls = [l.strip() for l in open(listfile) if l.strip()]
    os.makedirs(out, exist_ok=True)
    jobs = [(u, out) for u in urls]
    if mode == "seq":
        total = sum(map(fetch, jobs))
    elif mode == "thread":
        with concurrent.futures.ThreadPoolExecutor(workers) as ex:
            total = sum(ex.map(fetch, jobs, chunksize=64))
    elif mode == "process":
        with multiprocessing.Pool(workers) as pool:
            total = sum(pool.imap_unordered(fetch, jobs, chunksize=64))
    elif mode == "aiohttp":
        total = asyncio.run(fetch_all_aiohttp(urls, out, workers))
    else:
        sys.exit("unknown mode " + mode)
    print(total)


if __name__ == "__main__":
    main()
