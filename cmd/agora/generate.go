package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/agoranet/agora/engine"
)

func newGenerateCmd() *cobra.Command {
	var (
		modelPath, prompt, promptTokens string
		chat                            bool
		o                               engine.GenerateOptions
	)
	cmd := &cobra.Command{
		Use:   "generate --model F.gguf (--prompt TEXT | --prompt-tokens 1,2,3)",
		Short: "Run the built-in engine on a prompt and stream the completion",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if modelPath == "" {
				return usageErrorf("--model FILE.gguf is required")
			}
			if (prompt == "") == (promptTokens == "") {
				return usageErrorf("give exactly one of --prompt or --prompt-tokens")
			}
			asJSON, err := outputJSON(cmd)
			if err != nil {
				return err
			}
			m, err := engine.Load(modelPath)
			if err != nil {
				return err
			}
			defer m.Close()
			var ids []int
			switch {
			case promptTokens != "":
				for _, f := range strings.Split(promptTokens, ",") {
					id, err := strconv.Atoi(strings.TrimSpace(f))
					if err != nil || id < 0 || id >= m.Config().Vocab {
						return usageErrorf("--prompt-tokens: %q is not a token id of this model", f)
					}
					ids = append(ids, id)
				}
			case chat:
				if ids, err = m.EncodeChat([]engine.Message{{Role: "user", Content: prompt}}); err != nil {
					return err
				}
			default:
				ids = m.Tokenizer().Encode(prompt, false, true)
			}
			out := cmd.OutOrStdout()
			var stream func(engine.Token) error
			if !asJSON {
				stream = func(t engine.Token) error {
					_, err := io.WriteString(out, t.Text)
					return err
				}
			}
			res, err := m.Generate(cmd.Context(), ids, o, stream)
			if err != nil {
				return err
			}
			if !asJSON {
				_, err := fmt.Fprintln(out)
				return err
			}
			tokens := make([]int, len(res.Tokens))
			var text strings.Builder
			for i, t := range res.Tokens {
				tokens[i] = t.ID
				text.WriteString(t.Text)
			}
			return printResult(cmd, struct {
				Tokens       []int          `json:"tokens"`
				Text         string         `json:"text"`
				FinishReason string         `json:"finish_reason"`
				Logprobs     []engine.Token `json:"logprobs,omitempty"`
			}{tokens, text.String(), res.FinishReason, logprobsIf(o.TopLogprobs > 0, res.Tokens)}, nil)
		},
	}
	f := cmd.Flags()
	f.StringVar(&modelPath, "model", "", "GGUF model file")
	f.StringVar(&prompt, "prompt", "", "prompt text")
	f.StringVar(&promptTokens, "prompt-tokens", "", "prompt as comma-separated token ids")
	f.BoolVar(&chat, "chat", false, "wrap the prompt as a user turn in the model's chat template")
	f.IntVar(&o.MaxTokens, "max-tokens", 64, "maximum tokens to generate")
	f.Float32Var(&o.Temperature, "temperature", 0, "sampling temperature (0: greedy)")
	f.Float32Var(&o.TopP, "top-p", 1, "nucleus sampling mass")
	f.Uint64Var(&o.Seed, "seed", 0, "sampling seed (same seed, same output)")
	f.IntVar(&o.TopLogprobs, "top-logprobs", 0, "report this many alternatives per token in JSON output")
	return cmd
}

func logprobsIf(on bool, t []engine.Token) []engine.Token {
	if on {
		return t
	}
	return nil
}
