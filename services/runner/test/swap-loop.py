"""The attacker of files-race.test.ts: swaps pairs of entries of a directory with renameat2
RENAME_EXCHANGE in a tight loop (each swap is atomic, so the names are never missing), until its
stdin closes or its parent dies. Prints "ready", then the number of swaps when it stops. Every
pair is swapped an even number of times, so the entries end where they started.

usage: python3 swap-loop.py <dir> <a> <b> [<c> <d> ...]
"""

import ctypes
import os
import sys
import threading

AT_FDCWD = -100
RENAME_EXCHANGE = 2

libc = ctypes.CDLL(None, use_errno=True)
directory = sys.argv[1]
names = [os.fsencode(n) for n in sys.argv[2:]]
pairs = list(zip(names[0::2], names[1::2]))
os.chdir(directory)
parent = os.getppid()
# lowest priority: on a busy machine the runner under test gets the CPU first; idle cycles still swap
os.nice(19)
stop = threading.Event()
threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()

swaps = 0
print("ready", flush=True)
while not stop.is_set():
    for _ in range(128):
        for a, b in pairs:
            for _ in range(2):
                if libc.renameat2(AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE) != 0:
                    sys.exit(f"renameat2: {os.strerror(ctypes.get_errno())}")
                swaps += 1
    if os.getppid() != parent:
        break
print(swaps, flush=True)
