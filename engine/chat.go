package engine

import (
	"fmt"
	"strings"
)

// Message is one chat turn.
type Message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// ChatTemplate names a prompt format family.
type ChatTemplate string

// Supported chat templates.
const (
	ChatML ChatTemplate = "chatml" // SmolLM2, Qwen2: <|im_start|>role\n…<|im_end|>
	Llama3 ChatTemplate = "llama3" // <|start_header_id|>role<|end_header_id|>\n\n…<|eot_id|>
	Llama2 ChatTemplate = "llama2" // <s>[INST] <<SYS>>…<</SYS>> … [/INST]
	NoChat ChatTemplate = "none"   // no known template: plain concatenation
)

// detectTemplate picks the family from the model's Jinja template text, else
// from marker tokens in its vocabulary.
func detectTemplate(jinja string, tok *Tokenizer) ChatTemplate {
	switch {
	case strings.Contains(jinja, "<|im_start|>"):
		return ChatML
	case strings.Contains(jinja, "<|start_header_id|>"):
		return Llama3
	case strings.Contains(jinja, "[INST]"):
		return Llama2
	}
	if _, ok := tok.ID("<|im_start|>"); ok {
		return ChatML
	}
	if _, ok := tok.ID("<|start_header_id|>"); ok {
		return Llama3
	}
	if tok.Kind == SentencePiece {
		return Llama2
	}
	return NoChat
}

// Render formats messages for the model, ending with the assistant's turn open.
func (t ChatTemplate) Render(msgs []Message) (string, error) {
	var b strings.Builder
	switch t {
	case ChatML:
		for _, m := range msgs {
			fmt.Fprintf(&b, "<|im_start|>%s\n%s<|im_end|>\n", m.Role, m.Content)
		}
		b.WriteString("<|im_start|>assistant\n")
	case Llama3:
		b.WriteString("<|begin_of_text|>")
		for _, m := range msgs {
			fmt.Fprintf(&b, "<|start_header_id|>%s<|end_header_id|>\n\n%s<|eot_id|>", m.Role, strings.TrimSpace(m.Content))
		}
		b.WriteString("<|start_header_id|>assistant<|end_header_id|>\n\n")
	case Llama2:
		// System text folds into the first user turn, as Llama-2-chat was trained.
		var sys string
		if len(msgs) > 0 && msgs[0].Role == "system" {
			sys, msgs = msgs[0].Content, msgs[1:]
		}
		for i, m := range msgs {
			switch m.Role {
			case "user":
				content := strings.TrimSpace(m.Content)
				if sys != "" && i == 0 {
					content = "<<SYS>>\n" + sys + "\n<</SYS>>\n\n" + content
				}
				fmt.Fprintf(&b, "<s>[INST] %s [/INST]", content)
			case "assistant":
				fmt.Fprintf(&b, " %s </s>", strings.TrimSpace(m.Content))
			default:
				return "", fmt.Errorf("llama2 template: role %q is not user or assistant", m.Role)
			}
		}
	case NoChat:
		for _, m := range msgs {
			fmt.Fprintf(&b, "%s: %s\n", m.Role, m.Content)
		}
		b.WriteString("assistant: ")
	default:
		return "", fmt.Errorf("unknown chat template %q", t)
	}
	return b.String(), nil
}
