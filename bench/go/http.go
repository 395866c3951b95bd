package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync/atomic"
)

// httpServer is Go's net/http serving the HTTP/1.1 keep-alive hello of `gorust serve --proto
// http`: "Request #N\n" from a process-wide counter, Content-Type text/plain, an explicit
// Content-Length. The peer of gorust's goroutine model in `gorust compare`. Port 0 picks a
// free port; once bound it prints "listening on http://ADDR/ (go net/http)", the first line
// every compare server prints.
func httpServer(port int) {
	l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("listening on http://%s/ (go net/http)\n", l.Addr())
	var counter uint64
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := atomic.AddUint64(&counter, 1)
		body := "Request #" + strconv.FormatUint(n, 10) + "\n"
		h := w.Header()
		h.Set("Content-Type", "text/plain")
		h.Set("Content-Length", strconv.Itoa(len(body)))
		w.Write([]byte(body))
	})
	if err := http.Serve(l, handler); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
