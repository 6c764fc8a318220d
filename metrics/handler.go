package metrics

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Handler returns an http.Handler serving the exposition text for a registry holding
// only c: no Go runtime or process collectors, so the output depends only on c's
// snapshots. Families and series are sorted, so equal snapshots give equal output.
// A scrape that hits a collection error fails with HTTP 500.
func Handler(c *Collector) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(c) // c's descriptors are fixed and distinct: cannot fail
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.HTTPErrorOnError})
}
