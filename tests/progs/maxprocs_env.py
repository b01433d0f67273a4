"""Print gocore.gomaxprocs() under the GOCORE_MAXPROCS of the environment,
or the ValueError it raises."""
import gocore

try:
    print(gocore.gomaxprocs())
except ValueError as e:
    print(f"ValueError: {e}")
