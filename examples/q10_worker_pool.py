"""10. How do you implement a worker pool using goroutines?

Go:  3 workers `for j := range jobs { results <- j * 2 }`; send 5 jobs;
     close(jobs); wg.Wait(); close(results); for r := range results {...}

gocore differences:
- Same shape: `Chan(100)` for jobs and results, `async for j in jobs`,
  `WaitGroup` with `try/finally: wg.done()` for `defer wg.Done()`.
- Which worker takes which job, and so the order of the results, is not
  fixed - as in Go. Every job is processed exactly once.
"""
import sys

from gocore import Chan, WaitGroup, go, run


def println(*args: object) -> None:
    """Go's fmt.Println: one write per line. print() writes the text and the
    newline separately, so lines of goroutines running on different worker
    threads could interleave."""
    sys.stdout.write(" ".join(map(str, args)) + "\n")


NUM_WORKERS = 3


async def worker(id: int, jobs: Chan[int], results: Chan[int], wg: WaitGroup) -> None:
    try:
        async for j in jobs:
            println(f"Worker {id} processing job {j}")
            await results.send(j * 2)  # process job
    finally:
        wg.done()


async def main() -> None:
    jobs: Chan[int] = Chan(100)
    results: Chan[int] = Chan(100)
    wg = WaitGroup()

    # Start workers
    for w in range(1, NUM_WORKERS + 1):
        wg.add(1)
        go(worker, w, jobs, results, wg)

    # Send jobs
    for j in range(1, 6):
        await jobs.send(j)
    jobs.close()

    # Wait for workers to finish
    await wg.wait()
    results.close()

    # Collect results
    async for r in results:
        println("Result:", r)


if __name__ == "__main__":
    run(main)
