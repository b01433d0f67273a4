// tls_client: the load generator of E1T (TLS echo), in Go because the
// compiled echo_client.c speaks no TLS.
//
//	tls_client HOST PORT CONNS SIZE WARMUP_S DURATION_S CA_PEM
//
// Closed loop as echo_client's e1: CONNS connections (TLS 1.3, the
// server's certificate verified against CA_PEM as "localhost"), each
// sending SIZE bytes, reading the whole echo, checking every byte and
// sending again.  Requests completing during the first WARMUP_S seconds are
// not counted; those completing in the next DURATION_S seconds are, with
// their latency.  Prints one line of JSON (the keys echo_client prints).
// Any error prints "error: ..." on stderr and exits 1.  The runner builds
// it with `go build` and runs it pinned to the client CPU.
package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"os"
	"sort"
	"strconv"
	"sync"
	"time"
)

func fail(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "error: "+format+"\n", a...)
	os.Exit(1)
}

func main() {
	if len(os.Args) != 8 {
		fail("usage: tls_client HOST PORT CONNS SIZE WARMUP_S DURATION_S CA_PEM")
	}
	addr := net.JoinHostPort(os.Args[1], os.Args[2])
	conns, _ := strconv.Atoi(os.Args[3])
	size, _ := strconv.Atoi(os.Args[4])
	warmup, _ := strconv.ParseFloat(os.Args[5], 64)
	duration, _ := strconv.ParseFloat(os.Args[6], 64)
	pem, err := os.ReadFile(os.Args[7])
	if err != nil {
		fail("%v", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		fail("no certificate in %s", os.Args[7])
	}
	cfg := &tls.Config{RootCAs: pool, ServerName: "localhost", MinVersion: tls.VersionTLS13}

	start := time.Now()
	begin := start.Add(time.Duration(warmup * float64(time.Second)))
	end := begin.Add(time.Duration(duration * float64(time.Second)))
	var mu sync.Mutex
	var lat []time.Duration
	var wg sync.WaitGroup
	for i := 0; i < conns; i++ {
		wg.Add(1)
		go func(k int) {
			defer wg.Done()
			c, err := tls.Dial("tcp", addr, cfg)
			if err != nil {
				fail("dial: %v", err)
			}
			defer c.Close()
			msg := bytes.Repeat([]byte{byte('a' + k%26)}, size)
			buf := make([]byte, size)
			var mine []time.Duration
			for {
				t0 := time.Now()
				if t0.After(end) {
					break
				}
				if _, err := c.Write(msg); err != nil {
					fail("write: %v", err)
				}
				if _, err := io.ReadFull(c, buf); err != nil {
					fail("read: %v", err)
				}
				t1 := time.Now()
				if !bytes.Equal(buf, msg) {
					fail("wrong bytes echoed")
				}
				if t1.After(begin) && !t1.After(end) {
					mine = append(mine, t1.Sub(t0))
				}
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}(i)
	}
	wg.Wait()
	sort.Slice(lat, func(a, b int) bool { return lat[a] < lat[b] })
	pct := func(p float64) float64 {
		if len(lat) == 0 {
			return 0
		}
		k := int(p / 100 * float64(len(lat)))
		if k >= len(lat) {
			k = len(lat) - 1
		}
		return float64(lat[k].Nanoseconds()) / 1000
	}
	maxUs := 0.0
	if len(lat) > 0 {
		maxUs = float64(lat[len(lat)-1].Nanoseconds()) / 1000
	}
	fmt.Printf("{\"conns\": %d, \"size\": %d, \"requests\": %d, \"seconds\": %.3f, "+
		"\"rps\": %.1f, \"p50_us\": %.1f, \"p99_us\": %.1f, \"p999_us\": %.1f, \"max_us\": %.1f}\n",
		conns, size, len(lat), duration, float64(len(lat))/duration,
		pct(50), pct(99), pct(99.9), maxUs)
}
