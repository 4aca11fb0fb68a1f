package bench

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/metrics"
	"syscall"
	"time"

	"github.com/agoranet/agora/engine"
)

// EngineConfig names the model and the lengths an engine benchmark runs.
type EngineConfig struct {
	Model        string // path of a GGUF model
	PromptTokens int    // prompt length, processed as one batch
	DecodeTokens int    // tokens decoded greedily; end-of-sequence does not stop it
}

// EngineResult is what an engine benchmark measured. Peak RSS is the whole
// process's, so a caller that wants the model's cost alone generates or
// downloads the model in another process.
type EngineResult struct {
	Model        string  `json:"model"`
	Weights      string  `json:"weights"`
	Threads      int     `json:"threads"`
	PromptTokens int     `json:"prompt_tokens"`
	PromptPerSec float64 `json:"prompt_tokens_per_second"`
	DecodeTokens int     `json:"decode_tokens"`
	DecodePerSec float64 `json:"decode_tokens_per_second"`
	PeakRSSMiB   float64 `json:"peak_rss_mib"`
	GoMemoryMiB  float64 `json:"go_runtime_mib"`
	FileMiB      float64 `json:"model_file_mib"`
}

// ContextError says the asked prompt and decode lengths do not fit in the
// model's context; the caller knows which of its inputs set them.
type ContextError struct{ Prompt, Decode, Context int }

func (e *ContextError) Error() string {
	return fmt.Sprintf("prompt %d + decode %d tokens exceed the model's context of %d", e.Prompt, e.Decode, e.Context)
}

// Engine loads cfg.Model and measures prompt processing and decode tokens
// per second on GOMAXPROCS threads, and the process's peak memory.
func Engine(ctx context.Context, cfg EngineConfig) (*EngineResult, error) {
	promptLen, genLen := cfg.PromptTokens, cfg.DecodeTokens
	if promptLen < 1 || genLen < 2 {
		return nil, fmt.Errorf("bench: at least 1 prompt token and 2 decode tokens, got %d and %d", promptLen, genLen)
	}
	m, err := engine.Load(cfg.Model)
	if err != nil {
		return nil, err
	}
	defer m.Close()
	c := m.Config()
	if promptLen+genLen > c.Context {
		return nil, &ContextError{Prompt: promptLen, Decode: genLen, Context: c.Context}
	}
	prompt := make([]int, promptLen)
	for i := range prompt {
		prompt[i] = (i*7919 + 11) % c.Vocab
	}
	// Prompt speed: a generation of one token is almost all prompt.
	t0 := time.Now()
	if _, err := m.Generate(ctx, prompt, engine.GenerateOptions{MaxTokens: 1}, nil); err != nil {
		return nil, err
	}
	promptSecs := time.Since(t0).Seconds()
	// Stop: [-1] only replaces no stop token; to keep decoding through
	// EOS we stop on nothing the model can produce.
	o := engine.GenerateOptions{MaxTokens: genLen, Stop: []int{-1}}
	res, err := m.Generate(ctx, prompt, o, nil)
	if err != nil {
		return nil, err
	}
	decodeSecs := res.Duration.Seconds() - res.TimeToFirst.Seconds()
	decoded := len(res.Tokens) - 1 // the first token came from the prompt pass
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	sample := []metrics.Sample{{Name: "/memory/classes/total:bytes"}}
	metrics.Read(sample)
	var goBytes uint64
	if sample[0].Value.Kind() == metrics.KindUint64 {
		goBytes = sample[0].Value.Uint64()
	}
	var fileBytes int64
	if st, _ := os.Stat(cfg.Model); st != nil {
		fileBytes = st.Size()
	}
	return &EngineResult{Model: c.Name, Weights: c.WeightType, Threads: runtime.GOMAXPROCS(0),
		PromptTokens: promptLen, PromptPerSec: float64(promptLen) / promptSecs,
		DecodeTokens: decoded, DecodePerSec: float64(decoded) / decodeSecs,
		PeakRSSMiB: float64(ru.Maxrss) / 1024, GoMemoryMiB: float64(goBytes) / (1 << 20), FileMiB: float64(fileBytes) / (1 << 20)}, nil
}
