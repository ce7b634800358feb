// Command testapp is the small HTTP app the agent's tests deploy. It listens
// on $PORT and answers / with a greeting; /log?line=X prints X on stdout.
// CRASH_AFTER=<duration> makes it exit with code 3 that long after it
// listens; ALLOC_MB=<n> makes it hold n MiB of touched memory.
package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

var hold []byte

func main() {
	port := os.Getenv("PORT")
	fmt.Println("testapp starting on port", port)
	fmt.Fprintln(os.Stderr, "testapp says hello on stderr")
	ln, err := net.Listen("tcp", ":"+port)
	if err != nil {
		fmt.Fprintln(os.Stderr, "listen:", err)
		os.Exit(1)
	}
	if s := os.Getenv("ALLOC_MB"); s != "" {
		var n int
		fmt.Sscan(s, &n)
		hold = make([]byte, n<<20)
		for i := range hold {
			hold[i] = byte(i)
		}
	}
	if s := os.Getenv("CRASH_AFTER"); s != "" {
		d, _ := time.ParseDuration(s)
		go func() {
			time.Sleep(d)
			fmt.Println("testapp crashing")
			os.Exit(3)
		}()
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM)
	go func() {
		<-sig
		fmt.Println("testapp stopping")
		os.Exit(0)
	}()
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello %s from pid %d", os.Getenv("GREETING"), os.Getpid())
	})
	http.HandleFunc("/log", func(w http.ResponseWriter, r *http.Request) {
		fmt.Println(r.URL.Query().Get("line"))
	})
	http.HandleFunc("/env", func(w http.ResponseWriter, r *http.Request) {
		// Names only: what the app inherited.
		var names []string
		for _, kv := range os.Environ() {
			k, _, _ := strings.Cut(kv, "=")
			names = append(names, k)
		}
		fmt.Fprint(w, strings.Join(names, " "))
	})
	_ = http.Serve(ln, nil)
}
