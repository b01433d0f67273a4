"""An exception escapes a goroutine started without run(): the default
panic hook prints it with the goroutine id and exits with status 2.
With argv[1] == "hook", a custom hook records it and the program goes on."""
import sys
import time

import gocore


def failing_function():
    raise ValueError("boom outside run")


async def async_failing():
    failing_function()


if len(sys.argv) > 1 and sys.argv[1] == "hook":
    seen = []
    gocore.set_panic_hook(lambda exc, goid: seen.append((type(exc).__name__, str(exc), goid)))
    gocore.go(async_failing)
    deadline = time.monotonic() + 10
    while not seen and time.monotonic() < deadline:
        time.sleep(0.01)
    print("hook saw", seen[0][0], seen[0][1], isinstance(seen[0][2], int))
    sys.exit(0)

gocore.go(async_failing)
time.sleep(10)          # the panic ends the process long before this
print("not reached")
