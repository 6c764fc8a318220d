package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// --pprof adds the profiler's pages and leaves every other path to the admin API.
func TestWithPprof(t *testing.T) {
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("api " + r.URL.Path)) })
	h := withPprof(api)
	for path, want := range map[string]string{
		"/debug/pprof/":        "goroutine",
		"/debug/pprof/cmdline": "",
		"/v1/status":           "api /v1/status",
		"/healthz":             "api /healthz",
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), want) {
			t.Errorf("GET %s: %d %.80q, want 200 containing %q", path, rec.Code, rec.Body.String(), want)
		}
	}
}
