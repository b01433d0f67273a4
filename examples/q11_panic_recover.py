"""11. What happens if a goroutine panics?

Go:  func safeGoroutine() { defer func() { if r := recover(); r != nil {...} }(); panic("Something went wrong") }
     go safeGoroutine(); go func() { panic("Unrecovered panic") }(); select {}

gocore differences:
- A panic is a Python exception; `defer ... recover()` is `try/except`
  inside the goroutine (catch what you can handle, e.g. `Exception`).
- An exception that escapes a goroutine is never lost: like an unrecovered
  Go panic it ends the program. `run()` closes the other goroutines and
  re-raises the exception itself, with the note "(raised in goroutine N)".
  Without `run()` it is printed with the goroutine id and the process exits
  with status 2 (`gocore.set_panic_hook` replaces that).
- This program catches what `run()` raises, prints it the way Go prints a
  panic, and exits with status 2 as Go does.
- The unrecovered goroutine first sleeps 0.05 s so that the recovering one
  reliably gets to run before the program dies (in Go either may come first).
"""
import sys

from gocore import go, nilchan, run, sleep


def println(*args: object) -> None:
    """Go's fmt.Println: one write per line. print() writes the text and the
    newline separately, so lines of goroutines running on different worker
    threads could interleave."""
    sys.stdout.write(" ".join(map(str, args)) + "\n")


async def safe_goroutine() -> None:
    try:
        raise RuntimeError("Something went wrong")  # panic(...)
    except Exception as r:  # defer func() { if r := recover(); r != nil {...} }()
        println("Recovered from panic:", r)


async def unrecovered() -> None:
    await sleep(0.05)
    raise RuntimeError("Unrecovered panic")  # crashes the program


async def main() -> None:
    go(safe_goroutine)
    go(unrecovered)
    println("Main continues")
    await nilchan.recv()  # select {}: keep the program alive


if __name__ == "__main__":
    try:
        run(main)
    except RuntimeError as e:
        print(f"panic: {e}", *getattr(e, "__notes__", ()), file=sys.stderr)
        sys.exit(2)
