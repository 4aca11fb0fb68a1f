package validator

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/agoranet/agora/wire"
)

// Failure reasons, the values of agora_validator_verification_failures_total's
// reason label: a fixed set, never an error's text.
const (
	ReasonVerification = "verification" // the answer is not the pinned model's (ErrVerification)
	ReasonBadReceipt   = "bad_receipt"  // the miner's signed receipt did not verify
	ReasonUnreachable  = "unreachable"  // no answer, an error status or a broken stream
	// ReasonVerifierUnavailable: the validator's own verifier (an upstream
	// server) could not check the answer; the miner is not blamed.
	ReasonVerifierUnavailable = "verifier_unavailable"
)

// metrics are a validator's Prometheus metrics, on a registry of its own.
type metrics struct {
	reg        *prometheus.Registry
	challenges prometheus.Counter
	unchecked  prometheus.Counter
	failures   *prometheus.CounterVec
}

func newMetrics(v *Validator) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		challenges: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "agora_validator_challenges_total",
			Help: "Challenges sent to miners.",
		}),
		unchecked: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "agora_validator_unchecked_total",
			Help: "Answers the spot check did not teacher-force (--verify-rate below 1); their receipts and token ids were still checked.",
		}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "agora_validator_verification_failures_total",
			Help: "Challenges that failed, by reason (verification, bad_receipt, unreachable, verifier_unavailable).",
		}, []string{"reason"}),
	}
	for _, r := range []string{ReasonVerification, ReasonBadReceipt, ReasonUnreachable, ReasonVerifierUnavailable} {
		m.failures.WithLabelValues(r)
	}
	m.reg.MustRegister(m.challenges, m.unchecked, m.failures, &scoreCollector{v: v})
	return m
}

// failureReason classifies a failed challenge.
func failureReason(err error) string {
	switch {
	case errors.Is(err, ErrVerifierUnavailable):
		return ReasonVerifierUnavailable
	case errors.Is(err, wire.ErrBadReceipt):
		return ReasonBadReceipt
	case errors.Is(err, ErrVerification):
		return ReasonVerification
	}
	return ReasonUnreachable
}

var scoreDesc = prometheus.NewDesc("agora_validator_score",
	"The validator's current score (EMA, 0 to 1) of each scored UID.", []string{"uid"}, nil)

// scoreCollector reports the scores as they are at scrape time, so a
// deregistered UID disappears.
type scoreCollector struct{ v *Validator }

func (c *scoreCollector) Describe(ch chan<- *prometheus.Desc) { ch <- scoreDesc }

func (c *scoreCollector) Collect(ch chan<- prometheus.Metric) {
	for _, s := range c.v.Scores() {
		ch <- prometheus.MustNewConstMetric(scoreDesc, prometheus.GaugeValue, s.EMA, strconv.Itoa(s.UID))
	}
}

// Metrics is the validator's Prometheus registry: serve it with
// MetricsHandler, or hand it to a gateway's Config.Gatherers.
func (v *Validator) Metrics() *prometheus.Registry { return v.metrics.reg }

// MetricsHandler serves the validator's metrics in the Prometheus
// exposition format.
func (v *Validator) MetricsHandler() http.Handler {
	return promhttp.HandlerFor(v.metrics.reg, promhttp.HandlerOpts{})
}
