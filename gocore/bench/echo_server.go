// echo_server: Go's net peer of gocore's network benchmarks (E1, E4).
//
// A goroutine per connection reading into a 64 KiB buffer and writing back
// what it read, the same loop as every Python server of the benchmark
// (gocore/bench/echo_*.py).  io.Copy is avoided on purpose: on Linux it may
// splice between the two sockets, which no Python server does.  Only the
// standard library; the runner builds it with `go build` (no module, no
// network) and runs it with GOMAXPROCS=1.
//
//	echo_server HOST:PORT
//
// prints "@@LISTEN <port>" once listening, then serves until killed.  Go
// raises the soft RLIMIT_NOFILE to the hard limit by itself (Go 1.19+).
package main

import (
	"fmt"
	"net"
	"os"
	"time"
)

func handle(c net.Conn) {
	defer c.Close()
	buf := make([]byte, 65536)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func main() {
	addr := "127.0.0.1:0"
	if len(os.Args) > 1 {
		addr = os.Args[1]
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("@@LISTEN %d\n", ln.Addr().(*net.TCPAddr).Port)
	var delay time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			// Out of fds (EMFILE) and the like: back off as net/http's
			// Server.Serve does (5 ms doubling to 1 s) instead of spinning,
			// and keep serving the connections we have.
			if delay == 0 {
				delay = 5 * time.Millisecond
			} else if delay *= 2; delay > time.Second {
				delay = time.Second
			}
			fmt.Fprintln(os.Stderr, "accept:", err, "; retrying in", delay)
			time.Sleep(delay)
			continue
		}
		delay = 0
		go handle(c)
	}
}
