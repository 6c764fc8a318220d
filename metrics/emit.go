package metrics

import "github.com/prometheus/client_golang/prometheus"

// emitter sends constant metrics, turning a construction error (a bug: wrong label
// count) into an invalid metric so the scrape reports it rather than panicking.
type emitter struct{ ch chan<- prometheus.Metric }

func (e emitter) gauge(d *prometheus.Desc, v float64, labels ...string) {
	e.send(d)(prometheus.NewConstMetric(d, prometheus.GaugeValue, v, labels...))
}

func (e emitter) counter(d *prometheus.Desc, v float64, labels ...string) {
	e.send(d)(prometheus.NewConstMetric(d, prometheus.CounterValue, v, labels...))
}

// send returns a function that sends m, or an invalid metric for d if err != nil.
func (e emitter) send(d *prometheus.Desc) func(m prometheus.Metric, err error) {
	return func(m prometheus.Metric, err error) {
		if err != nil {
			m = prometheus.NewInvalidMetric(d, err)
		}
		e.ch <- m
	}
}
