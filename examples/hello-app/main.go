// Command hello-app is the example app of WiseHosting's README: a web
// server on $PORT (which the worker sets) that greets whoever asks and
// names the app's host, plus a /health endpoint.
package main

import (
	"fmt"
	"log"
	"net/http"
	"os"
	"time"
)

func main() {
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	greeting := os.Getenv("GREETING")
	if greeting == "" {
		greeting = "Hello"
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s from hello-app on WiseHosting (host %s)\n", greeting, r.Host)
		log.Printf("%s %s from %s", r.Method, r.URL.Path, r.RemoteAddr)
	})
	mux.HandleFunc("/health", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	srv := &http.Server{Addr: ":" + port, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	log.Printf("hello-app listening on :%s", port)
	log.Fatal(srv.ListenAndServe())
}
