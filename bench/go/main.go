// Command gorust-bench is the Go peer of gorust's comparison benchmarks
// (crates/gorust/benches/compare.rs). Each subcommand runs one scenario a fixed
// number of times, times it from inside the process (start-up excluded) and
// prints one machine-readable line on stdout. GOMAXPROCS comes from the
// environment, set by the caller.
//
//	go build -o gorust-bench-go . && GOMAXPROCS=1 ./gorust-bench-go spawn_all 1000000
//
// Subcommands (N is the operation count):
//
//	spawn_all N    start N goroutines, then wait for all (one WaitGroup)  -> ns_per_op
//	spawn_batch N  start and wait for N goroutines in batches of 1,000    -> ns_per_op
//	pingpong N     N round trips between two goroutines over two channels -> ns_per_op
//	select N       the same through selects on unbuffered channels        -> ns_per_op
//	yield N        N calls of runtime.Gosched in one goroutine            -> ns_per_op
//	mem N          N goroutines parked on a channel receive at once       -> rss_kib_per_goroutine
//	echo PORT      an echo server on 127.0.0.1:PORT, a goroutine per connection; prints
//	               "ready" once listening (crates/gorust/benches/echo.rs)
//	http PORT      net/http's HTTP/1.1 hello on 127.0.0.1:PORT (0: any free port); prints
//	               "listening on http://ADDR/ (go net/http)" once bound (`gorust compare`)
package main

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

const batch = 1000

func main() {
	if len(os.Args) != 3 {
		usage()
	}
	n, err := strconv.Atoi(os.Args[2])
	if err != nil || n < 0 || (n == 0 && os.Args[1] != "http") {
		usage()
	}
	switch os.Args[1] {
	case "spawn_all":
		report(n, spawnAll(n))
	case "spawn_batch":
		report(n, spawnBatch(n))
	case "pingpong":
		report(n, pingPong(n))
	case "select":
		report(n, selectPingPong(n))
	case "yield":
		report(n, yield(n))
	case "mem":
		mem(n)
	case "echo":
		echoServer(n)
	case "http":
		httpServer(n)
	default:
		usage()
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: gorust-bench-go spawn_all|spawn_batch|pingpong|select|yield|mem N | echo PORT | http PORT")
	os.Exit(2)
}

func report(n int, d time.Duration) {
	fmt.Printf("ns_per_op=%.3f\n", float64(d.Nanoseconds())/float64(n))
}

func spawnAll(n int) time.Duration {
	var wg sync.WaitGroup
	start := time.Now()
	wg.Add(n)
	for i := 0; i < n; i++ {
		go func() { wg.Done() }()
	}
	wg.Wait()
	return time.Since(start)
}

func spawnBatch(n int) time.Duration {
	start := time.Now()
	for done := 0; done < n; done += batch {
		k := batch
		if n-done < k {
			k = n - done
		}
		var wg sync.WaitGroup
		wg.Add(k)
		for i := 0; i < k; i++ {
			go func() { wg.Done() }()
		}
		wg.Wait()
	}
	return time.Since(start)
}

// pingPong: the main goroutine sends on ping and waits on pong; an echo
// goroutine sends back what it receives. Channels hold one value, like the
// Rust peers' sync_channel(1) and tokio's mpsc::channel(1).
func pingPong(n int) time.Duration {
	ping := make(chan int, 1)
	pong := make(chan int, 1)
	go func() {
		for v := range ping {
			pong <- v
		}
		close(pong)
	}()
	start := time.Now()
	for i := 0; i < n; i++ {
		ping <- i
		<-pong
	}
	d := time.Since(start)
	close(ping)
	<-pong
	return d
}

// selectPingPong is pingPong through selects on unbuffered channels: the
// sender selects between ping and a channel that never fires, the receiver
// between pong and that channel, the echo between ping and quit.
func selectPingPong(n int) time.Duration {
	ping, pong := make(chan int), make(chan int)
	quit, never := make(chan struct{}), make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case v := <-ping:
				pong <- v
			case <-quit:
				return
			}
		}
	}()
	sink := 0
	start := time.Now()
	for i := 0; i < n; i++ {
		select {
		case ping <- i:
		case <-never:
			panic("never fired")
		}
		select {
		case v := <-pong:
			sink += v
		case <-never:
			panic("never fired")
		}
	}
	d := time.Since(start)
	close(quit)
	<-done
	_ = sink
	return d
}

func yield(n int) time.Duration {
	start := time.Now()
	for i := 0; i < n; i++ {
		runtime.Gosched()
	}
	return time.Since(start)
}

// mem parks n goroutines on a receive from one channel, reads VmRSS once all
// are parked, then releases them by closing the channel and waits for all.
func mem(n int) {
	before := vmRSSKiB()
	gate := make(chan struct{})
	var parked int64
	var wg sync.WaitGroup
	wg.Add(n)
	for i := 0; i < n; i++ {
		go func() {
			atomic.AddInt64(&parked, 1)
			<-gate
			wg.Done()
		}()
	}
	for atomic.LoadInt64(&parked) < int64(n) {
		time.Sleep(time.Millisecond)
	}
	// The counter is bumped just before the receive; give the last ones time
	// to reach it.
	time.Sleep(50 * time.Millisecond)
	after := vmRSSKiB()
	maps := mapCount()
	live := runtime.NumGoroutine() - 1 // less the main goroutine, as gorust's count
	close(gate)
	wg.Wait()
	fmt.Printf("rss_kib_per_goroutine=%.3f goroutines=%d rss_before_kib=%d rss_after_kib=%d maps=%d\n",
		float64(after-before)/float64(n), live, before, after, maps)
}

func vmRSSKiB() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		fmt.Fprintln(os.Stderr, "gorust-bench-go:", err)
		os.Exit(1)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		line := s.Text()
		if strings.HasPrefix(line, "VmRSS:") {
			fields := strings.Fields(line)
			v, err := strconv.ParseInt(fields[1], 10, 64)
			if err == nil {
				return v
			}
		}
	}
	fmt.Fprintln(os.Stderr, "gorust-bench-go: no VmRSS in /proc/self/status")
	os.Exit(1)
	return 0
}

func mapCount() int {
	b, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		fmt.Fprintln(os.Stderr, "gorust-bench-go:", err)
		os.Exit(1)
	}
	return strings.Count(string(b), "\n")
}
