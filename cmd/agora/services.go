package main

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"

	"github.com/agoranet/agora/address"
	"github.com/agoranet/agora/client"
	"github.com/agoranet/agora/engine"
	"github.com/agoranet/agora/gateway"
	"github.com/agoranet/agora/httpserve"
	"github.com/agoranet/agora/miner"
	"github.com/agoranet/agora/route"
	"github.com/agoranet/agora/validator"
	"github.com/agoranet/agora/wire"
)

func newMinerCmd() *cobra.Command {
	var (
		netuid                                                  uint32
		hotkey, from, listen, endpoint, backend, modelPath      string
		upstream, upstreamModel, upstreamKey, modelID, logLevel string
		maxConcurrent, maxQueue, upstreamMaxTokens              int
		kvBudgetMiB                                             int64
		allowHotkeys                                            []string
		allowStaked                                             bool
	)
	cmd := &cobra.Command{
		Use:   "miner --netuid N --hotkey HOT (--model F.gguf | --backend openai --upstream URL)",
		Short: "Serve a model on a subnet: register if needed, publish the endpoint, answer signed requests",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			logger, err := newLogger(logLevel)
			if err != nil {
				return err
			}
			if netuid == 0 || hotkey == "" {
				return usageErrorf("--netuid and --hotkey are required")
			}
			var b miner.Backend
			switch backend {
			case "builtin":
				if modelPath == "" {
					return usageErrorf("--model FILE.gguf is required for the builtin backend")
				}
				m, err := engine.Load(modelPath)
				if err != nil {
					return err
				}
				defer m.Close()
				if kvBudgetMiB < 0 || kvBudgetMiB > 1<<24 {
					return usageErrorf("--kv-budget-mib %d: from 0 to %d", kvBudgetMiB, 1<<24)
				}
				if b, err = miner.NewBuiltin(m, miner.WithKVBudget(kvBudgetMiB<<20)); err != nil {
					return err
				}
			case "openai":
				if upstream == "" {
					return usageErrorf("--upstream URL is required for the openai backend")
				}
				b = &miner.Upstream{URL: upstream, Model: upstreamModel, ID: modelID, APIKey: upstreamKey, MaxTokens: upstreamMaxTokens, Client: wire.NewHTTPClient(10 * time.Minute)}
			default:
				return usageErrorf("--backend %q: builtin or openai", backend)
			}
			allowOpts := []miner.AllowOption{miner.AllowLogger(logger)}
			if allowStaked {
				allowOpts = append(allowOpts, miner.AllowAnyStaked())
			}
			for _, h := range allowHotkeys {
				a, err := address.Parse(h)
				if err != nil {
					return usageErrorf("--allow-hotkey %q: %v", h, err)
				}
				allowOpts = append(allowOpts, miner.AllowHotkeys(a))
			}
			names := []string{hotkey}
			if from != "" {
				names = append(names, from)
			}
			keys, err := loadSigners(cmd, names...)
			if err != nil {
				return err
			}
			hot := keys[0]
			c, err := newClient(cmd)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			enroll := miner.Enrollment{Chain: c, Netuid: netuid, Hotkey: hot}
			if from != "" {
				enroll.Coldkey = keys[1]
			}
			mg, err := enroll.Join(ctx)
			if errors.Is(err, miner.ErrNotRegistered) {
				return usageErrorf("hotkey %s is not registered on subnet %d; pass --from COLDKEY to register it", signerAddress(hot), netuid)
			}
			if err != nil {
				return err
			}
			m, err := miner.New(miner.Config{Hotkey: hot, Backend: b, PinnedModel: mg.Subnet.Params.ModelId,
				Allow: miner.ChainAllow(c, netuid, 30*time.Second, allowOpts...), PricePer1K: mg.Subnet.Params.PricePer_1K,
				MaxConcurrent: maxConcurrent, MaxQueue: maxQueue, Logger: logger})
			if err != nil {
				return err
			}
			l, err := net.Listen("tcp", listen)
			if err != nil {
				return err
			}
			if endpoint == "" {
				endpoint = "http://" + l.Addr().String()
			}
			srv := miner.NewHTTPServer(m.Handler())
			errc := make(chan error, 1)
			go func() { errc <- srv.Serve(l) }()
			if err := enroll.Publish(ctx, endpoint, m.E2EPublicKey(), b.ModelID()); err != nil {
				srv.Close()
				return err
			}
			logger.Info("miner serving", "netuid", netuid, "hotkey", signerAddress(hot).String(), "endpoint", endpoint, "model_id", b.ModelID(), "x25519", hex.EncodeToString(m.E2EPublicKey()))
			select {
			case <-ctx.Done():
			case err := <-errc:
				if !errors.Is(err, http.ErrServerClosed) {
					return err
				}
			}
			shut, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			return srv.Shutdown(shut)
		},
	}
	f := cmd.Flags()
	f.Uint32Var(&netuid, "netuid", 0, "subnet to serve")
	f.StringVar(&hotkey, "hotkey", "", "the miner's hotkey (signs receipts and the serve transaction)")
	f.StringVar(&from, "from", "", "coldkey that registers the hotkey if it is not registered yet")
	f.StringVar(&listen, "listen", "127.0.0.1:8091", "address to listen on")
	f.StringVar(&endpoint, "endpoint", "", "URL to publish on chain (default: http://LISTEN)")
	f.StringVar(&backend, "backend", "builtin", "builtin (the engine) or openai (an OpenAI-compatible upstream)")
	f.StringVar(&modelPath, "model", "", "GGUF model for the builtin backend")
	f.StringVar(&upstream, "upstream", "", "OpenAI-compatible base URL, e.g. http://127.0.0.1:8000/v1")
	f.StringVar(&upstreamModel, "upstream-model", "", "model name the upstream serves")
	f.StringVar(&upstreamKey, "upstream-api-key", "", "bearer token for the upstream")
	f.StringVar(&modelID, "model-id", "", "sha256 of the weights the upstream serves (must match the subnet's pin)")
	f.IntVar(&maxConcurrent, "max-concurrent", 16, "requests served at once (the builtin backend decodes them together in one batch, within --kv-budget-mib)")
	f.IntVar(&maxQueue, "max-queue", 16, "requests waiting before 503")
	f.Int64Var(&kvBudgetMiB, "kv-budget-mib", 0, "builtin backend: KV cache for the requests decoding at once, in MiB; a request that does not fit gets 503 (0: four full contexts of the model, at most 2048)")
	f.IntVar(&upstreamMaxTokens, "upstream-max-tokens", 0, "largest max_tokens the upstream model's context allows (0: the protocol cap)")
	f.StringSliceVar(&allowHotkeys, "allow-hotkey", nil, "also serve this hotkey (repeatable); by default only validators with a permit on the subnet are served")
	f.BoolVar(&allowStaked, "allow-staked", false, "also serve any staked neuron of the subnet, not only permitted validators (lets them skip the gateway's payments)")
	f.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	addNodeFlag(cmd)
	return cmd
}

func newValidatorCmd() *cobra.Command {
	var (
		netuid            uint32
		hotkey, modelPath string
		interval          time.Duration
		gw                gatewayFlags
		logLevel          string
		metricsAddr       string
		verifier          string
		verifierUp        validator.UpstreamScorer
		verifierProtocol  string
		verifyRate        float64
	)
	cmd := &cobra.Command{
		Use:   "validator --netuid N --hotkey HOT --model F.gguf",
		Short: "Challenge the subnet's miners, verify their answers with the pinned model, and put weights on chain",
		Long: `validator challenges every serving miner of the subnet each --interval,
checks the answers token by token against the pinned model, and once a tempo
puts its scores on chain as weights: committed, then revealed reveal_period
tempos later on subnets with commit-reveal. The pending commit (weights and
salt) is saved under --home/commits before it is sent, in the same file
'agora weights commit' writes, so a validator restarted between commit and
reveal still reveals. With --gateway it also serves a paid OpenAI-compatible
gateway routed by its scores. --metrics ADDR serves Prometheus metrics on
http://ADDR/metrics (challenges, verification failures by reason, scores by
UID); with --gateway they are also on the gateway's /metrics.

--verifier openai teacher-forces answers on an OpenAI-compatible server
holding the same model (e.g. on a GPU) instead of the built-in engine:
--verifier-protocol vllm asks vLLM's /v1/completions for prompt_logprobs of
the prompt and completion tokens in one request; llamacpp asks llama.cpp
server's /completion (n_probs) once per completion token. --model is still
needed, for the model id, tokenizer and chat template. When the server is
down or answers nonsense, the miner's score is left alone.

--verify-rate R teacher-forces a random fraction R of the answers (chosen
with crypto/rand, so miners cannot tell which); the rest are still checked
for their receipt and token ids. A checked answer passes when its tokens'
ranks and logprob gaps stay within the published tolerance
(docs/verification.md); one that fails costs the miner its whole score.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			logger, err := newLogger(logLevel)
			if err != nil {
				return err
			}
			if netuid == 0 || hotkey == "" || modelPath == "" {
				return usageErrorf("--netuid, --hotkey and --model are required")
			}
			if !(verifyRate > 0 && verifyRate <= 1) {
				return usageErrorf("--verify-rate %v: must be above 0 and at most 1", verifyRate)
			}
			var scorer validator.Scorer
			switch verifier {
			case "builtin":
			case "openai":
				if verifierUp.URL == "" {
					return usageErrorf("--verifier-url URL is required for the openai verifier")
				}
				switch p := validator.Protocol(verifierProtocol); p {
				case validator.ProtocolVLLM, validator.ProtocolLlamaCpp:
					verifierUp.Protocol = p
				default:
					return usageErrorf("--verifier-protocol %q: vllm or llamacpp", verifierProtocol)
				}
				verifierUp.Client = wire.NewHTTPClient(5 * time.Minute)
				scorer = &verifierUp
			default:
				return usageErrorf("--verifier %q: builtin or openai", verifier)
			}
			// The builtin verifier runs the pinned model's weights; an upstream
			// verifier needs only its tokenizer and id, so a model too large
			// for the CPU engine can still be verified.
			var m *engine.Model
			var vocab *engine.Vocabulary
			if scorer == nil {
				loaded, err := engine.Load(modelPath)
				if err != nil {
					return err
				}
				defer loaded.Close()
				m = loaded
			} else if vocab, err = engine.LoadVocabulary(modelPath); err != nil {
				return err
			}
			c, err := newClient(cmd)
			if err != nil {
				return err
			}
			mg, err := c.Metagraph(cmd.Context(), netuid, 0)
			if err != nil {
				return err
			}
			id := ""
			if vocab != nil {
				id = vocab.ID
			} else if id, err = m.ID(); err != nil {
				return err
			}
			if mg.Subnet.Params.ModelId != "" && id != mg.Subnet.Params.ModelId {
				return fmt.Errorf("model %s is not subnet %d's pinned model %s", modelPath, netuid, mg.Subnet.Params.ModelId)
			}
			keys, err := loadSigners(cmd, hotkey)
			if err != nil {
				return err
			}
			// The pending commit lives where 'agora weights commit' keeps one,
			// so a restart between commit and reveal still reveals.
			v, err := validator.New(validator.Config{Hotkey: keys[0], Netuid: netuid, Model: m, Vocabulary: vocab, Scorer: scorer, Chain: c, Seed: uint64(time.Now().UnixNano()),
				Logger: logger, CommitPath: commitPath(cmd, netuid, hotkey), VerifyRate: verifyRate})
			if err != nil {
				return err
			}
			go func() {
				t := time.NewTicker(30 * time.Second)
				defer t.Stop()
				for {
					select {
					case <-cmd.Context().Done():
						return
					case <-t.C:
						for _, s := range v.Scores() {
							logger.Info("score", "uid", s.UID, "score", s.EMA, "verified", s.Verified, "failed", s.Failed, "tps", s.TPS)
						}
					}
				}
			}()
			if metricsAddr != "" {
				l, err := net.Listen("tcp", metricsAddr)
				if err != nil {
					return fmt.Errorf("metrics listen on %s: %w", metricsAddr, err)
				}
				mux := http.NewServeMux()
				mux.Handle("GET /metrics", v.MetricsHandler())
				srv := httpserve.New(mux, httpserve.Options{})
				go srv.Serve(l)
				defer srv.Close()
				logger.Info("metrics serving", "url", "http://"+l.Addr().String()+"/metrics")
			}
			if gw.listen != "" {
				gw.metrics = append(gw.metrics, v.Metrics())
				svc, l, err := gw.start(cmd.Context(), c, keys[0], netuid, v.Candidates, homeDir(cmd), logger)
				if err != nil {
					return err
				}
				go func() {
					if err := svc.Serve(l); !errors.Is(err, gateway.ErrServiceClosed) {
						logger.Error("gateway stopped", "err", err.Error())
					}
				}()
				defer func() {
					ctx, cancel := context.WithTimeout(context.WithoutCancel(cmd.Context()), 30*time.Second)
					defer cancel()
					if err := svc.Close(ctx); err != nil {
						logger.Warn("gateway close", "err", err.Error())
					}
				}()
				logger.Info("gateway serving", "url", "http://"+l.Addr().String()+"/v1")
			}
			logger.Info("validator running", "netuid", netuid)
			return v.Run(cmd.Context(), interval)
		},
	}
	f := cmd.Flags()
	f.Uint32Var(&netuid, "netuid", 0, "subnet to validate")
	f.StringVar(&hotkey, "hotkey", "", "the validator's hotkey (registered, staked)")
	f.StringVar(&modelPath, "model", "", "the subnet's pinned model, for verification")
	f.DurationVar(&interval, "interval", 5*time.Second, "time between challenge rounds")
	f.StringVar(&verifier, "verifier", "builtin", "builtin (the engine) or openai (an OpenAI-compatible server returning prompt logprobs)")
	f.StringVar(&verifierUp.URL, "verifier-url", "", "the openai verifier's base URL, e.g. http://127.0.0.1:8000/v1")
	f.StringVar(&verifierUp.Model, "verifier-model", "", "model name the verifier server knows")
	f.StringVar(&verifierProtocol, "verifier-protocol", string(validator.ProtocolVLLM), "vllm (/v1/completions prompt_logprobs) or llamacpp (/completion n_probs)")
	f.StringVar(&verifierUp.APIKey, "verifier-api-key", "", "bearer token for the verifier server")
	f.IntVar(&verifierUp.TopN, "verifier-top-n", validator.DefaultTopN, "alternatives asked per position")
	f.Float64Var(&verifyRate, "verify-rate", 1, "fraction of answers teacher-forced through the pinned model, chosen at random (0 < R ≤ 1)")
	gw.register(cmd)
	f.StringVar(&metricsAddr, "metrics", "", "serve the validator's Prometheus metrics on http://`ADDR`/metrics, e.g. 127.0.0.1:9102 (empty: off; with --gateway they are on the gateway's /metrics too)")
	f.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	addNodeFlag(cmd)
	return cmd
}

// gatewayFlags are `agora validator`'s paid-gateway flags.
type gatewayFlags struct {
	listen        string
	ledger        string
	limits        gateway.Limits
	claimInterval time.Duration
	expiryMargin  uint64
	// metrics are served on the gateway's /metrics beside its own (the
	// validator's, when the validator runs it).
	metrics []prometheus.Gatherer
}

func (g *gatewayFlags) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&g.listen, "gateway", "", "also serve a paid OpenAI-compatible gateway on this address, routing by this validator's scores")
	f.StringVar(&g.ledger, "gateway-ledger", "", "the gateway's ledger of vouchers and charges (default: HOME/gateway-ledger-NETUID.jsonl)")
	f.IntVar(&g.limits.Concurrent, "gateway-max-concurrent", gateway.DefaultLimits.Concurrent, "requests one payer may have in flight (0: unlimited)")
	f.Float64Var(&g.limits.PerSecond, "gateway-rate", gateway.DefaultLimits.PerSecond, "requests per second one payer may sustain (0: unlimited)")
	f.IntVar(&g.limits.Burst, "gateway-burst", gateway.DefaultLimits.Burst, "requests one payer may send at once above the rate")
	f.DurationVar(&g.claimInterval, "gateway-claim-interval", gateway.DefaultClaimInterval, "how often the gateway claims what it charged (channels near expiry are claimed sooner)")
	f.Uint64Var(&g.expiryMargin, "gateway-expiry-margin", gateway.DefaultExpiryMargin, "blocks before a channel's expiry from which the gateway refuses its vouchers and claims it")
}

// start builds the validator's paid gateway (the constructor the devnet
// uses too) and binds its listener.
func (g *gatewayFlags) start(ctx context.Context, c *client.Client, key ed25519.PrivateKey, netuid uint32,
	candidates func(context.Context) ([]route.Candidate, error), home string, logger *slog.Logger) (*gateway.Service, net.Listener, error) {
	if g.limits.Concurrent < 0 || g.limits.PerSecond < 0 || g.limits.Burst < 0 {
		return nil, nil, usageErrorf("--gateway-max-concurrent, --gateway-rate and --gateway-burst cannot be negative")
	}
	if g.expiryMargin < gateway.MinExpiryMargin {
		return nil, nil, usageErrorf("--gateway-expiry-margin %d: at least %d blocks", g.expiryMargin, gateway.MinExpiryMargin)
	}
	if g.claimInterval <= 0 {
		return nil, nil, usageErrorf("--gateway-claim-interval must be positive")
	}
	ledger := g.ledger
	if ledger == "" {
		if err := os.MkdirAll(home, 0o700); err != nil {
			return nil, nil, fmt.Errorf("gateway ledger directory: %w", err)
		}
		ledger = filepath.Join(home, fmt.Sprintf("gateway-ledger-%d.jsonl", netuid))
	}
	limits := g.limits
	svc, err := gateway.NewService(ctx, gateway.ServiceConfig{
		Gateway: gateway.Config{Key: key, Model: fmt.Sprintf("agora-subnet-%d", netuid), Candidates: candidates, Logger: logger, Gatherers: g.metrics},
		Chain:   c, Netuid: netuid, LedgerPath: ledger, Limits: &limits,
		ExpiryMargin: g.expiryMargin, ClaimInterval: g.claimInterval})
	if err != nil {
		return nil, nil, err
	}
	l, err := net.Listen("tcp", g.listen)
	if err != nil {
		svc.Close(ctx)
		return nil, nil, fmt.Errorf("gateway listen on %s: %w", g.listen, err)
	}
	return svc, l, nil
}
