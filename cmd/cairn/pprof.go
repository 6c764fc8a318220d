package main

import (
	"net"
	"net/http"
	"net/http/pprof"
	"time"
)

// withPprof serves Go's profiler under /debug/pprof/ beside h (cairn node --pprof).
func withPprof(h http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.Handle("/", h)
	return mux
}

// servePprof serves only the profiler on addr, in the background (CAIRN_PPROF).
func servePprof(addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: withPprof(http.NotFoundHandler()), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = hs.Serve(l) }()
	return nil
}
