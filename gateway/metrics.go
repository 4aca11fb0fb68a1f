package gateway

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics are a gateway's Prometheus metrics, on a registry of its own so
// that several gateways in one process never collide. Labels come from small
// fixed sets only: a route pattern, a status class, a claim result — never a
// prompt, a key, a voucher or an address.
type Metrics struct {
	reg           *prometheus.Registry
	requests      *prometheus.CounterVec
	latency       *prometheus.HistogramVec
	paymentNeeded prometheus.Counter
	charged       prometheus.Counter
	claims        *prometheus.CounterVec
	claimedUnits  prometheus.Counter
}

// NewMetrics makes a gateway's metrics on a fresh registry.
func NewMetrics() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "agora_gateway_requests_total",
			Help: "HTTP requests answered by the gateway, by route and status class.",
		}, []string{"route", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "agora_gateway_request_seconds",
			Help:    "Time to answer a request in full (a stream until its last byte), by route.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120},
		}, []string{"route"}),
		paymentNeeded: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "agora_gateway_payment_required_total",
			Help: "Requests answered 402 Payment Required.",
		}),
		charged: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "agora_gateway_charged_base_units_total",
			Help: "Base units charged to payers' channels for finished requests.",
		}),
		claims: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "agora_gateway_claims_total",
			Help: "Channel claims sent to the chain, by result (claimed, refused).",
		}, []string{"result"}),
		claimedUnits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "agora_gateway_claimed_base_units_total",
			Help: "Base units newly claimed on chain from payers' channels.",
		}),
	}
	m.reg.MustRegister(m.requests, m.latency, m.paymentNeeded, m.charged, m.claims, m.claimedUnits,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, r := range []string{"claimed", "refused"} {
		m.claims.WithLabelValues(r)
	}
	return m
}

// Registry is where the gateway's metrics live; register more collectors on
// it to serve them on the gateway's /metrics.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the metrics, and those of extra, in the Prometheus
// exposition format.
func (m *Metrics) Handler(extra ...prometheus.Gatherer) http.Handler {
	g := append(prometheus.Gatherers{m.reg}, extra...)
	return promhttp.HandlerFor(g, promhttp.HandlerOpts{})
}

// routeLabel maps a matched ServeMux pattern to a fixed label.
func routeLabel(pattern string) string {
	switch pattern {
	case "GET /v1/models":
		return "/v1/models"
	case "GET /v1/agora/miners":
		return "/v1/agora/miners"
	case "POST /v1/chat/completions":
		return "/v1/chat/completions"
	case "POST /v1/completions":
		return "/v1/completions"
	case "GET /metrics":
		return "/metrics"
	}
	return "other"
}

// instrument counts and times every request next serves.
func (m *Metrics) instrument(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		code := sw.code
		if code == 0 {
			code = http.StatusOK
		}
		route := routeLabel(r.Pattern) // set by the ServeMux on r
		m.requests.WithLabelValues(route, strconv.Itoa(code/100)+"xx").Inc()
		m.latency.WithLabelValues(route).Observe(time.Since(start).Seconds())
		if code == http.StatusPaymentRequired {
			m.paymentNeeded.Inc()
		}
	})
}

// statusWriter remembers the status code; it keeps Flush for streams.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.code == 0 {
		s.code = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.code == 0 {
		s.code = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusWriter) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		if s.code == 0 {
			s.code = http.StatusOK
		}
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection.
func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// addCharge counts a finished request's charge (m may be nil).
func (m *Metrics) addCharge(units uint64) {
	if m != nil {
		m.charged.Add(float64(units))
	}
}

// claimed counts a claim the chain accepted, newly claiming units.
func (m *Metrics) claimed(units uint64) {
	if m != nil {
		m.claims.WithLabelValues("claimed").Inc()
		m.claimedUnits.Add(float64(units))
	}
}

// refused counts a claim the chain refused.
func (m *Metrics) refused() {
	if m != nil {
		m.claims.WithLabelValues("refused").Inc()
	}
}
