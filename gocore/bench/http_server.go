// http_server: Go's net/http peer of gocore's HTTP benchmarks (E2, E3).
//
// The standard library's server with one handler writing "Hello, World!"
// (Content-Type text/plain, so net/http does not sniff), the response the
// Python servers write (gocore/bench/http_common.py; net/http adds a Date
// header).  The runner builds it with `go build` and runs it with
// GOMAXPROCS=1.
//
//	http_server HOST:PORT
//
// prints "@@LISTEN <port>" once listening, then serves until killed.
package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
)

var body = []byte("Hello, World!")

func main() {
	ln, err := net.Listen("tcp", os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("@@LISTEN %d\n", ln.Addr().(*net.TCPAddr).Port)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Write(body)
	})
	if err := http.Serve(ln, h); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
