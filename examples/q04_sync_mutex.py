"""4. How do you synchronize goroutines in Go? - 3. sync.Mutex and sync.RWMutex

Go:  mu.Lock(); counter++; mu.Unlock()   // 100 goroutines -> always 100

gocore differences:
- `mu.Lock()` is `await mu.lock()`, `mu.Unlock()` is `mu.unlock()`; the
  idiomatic form is `async with mu:` (lock, and unlock even on an exception -
  Go's `mu.Lock(); defer mu.Unlock()`). From plain threads and sync
  goroutines use `with mu:` or `mu.blocking_lock()`.
- `sync.RWMutex` is `RWMutex()` with `rlock()/runlock()` as well; a
  short read-side section is shown below.
"""
from gocore import Mutex, RWMutex, WaitGroup, go, run

counter = 0
mu = Mutex()


async def increment(wg: WaitGroup) -> None:
    global counter
    try:
        async with mu:  # mu.Lock() ... mu.Unlock()
            counter += 1
    finally:
        wg.done()


async def main() -> None:
    wg = WaitGroup()
    for _ in range(100):
        wg.add(1)
        go(increment, wg)
    await wg.wait()
    print("Counter:", counter)  # always 100

    # RWMutex: many readers at once, or one writer.
    rw = RWMutex()
    await rw.rlock()
    await rw.rlock()  # a second reader does not wait
    print("two readers hold the RWMutex; a writer could lock:", rw.try_lock())
    rw.runlock()
    rw.runlock()
    print("readers gone; a writer could lock:", rw.try_lock())
    rw.unlock()


if __name__ == "__main__":
    run(main)
