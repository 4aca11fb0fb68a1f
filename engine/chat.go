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

// ChatTemplate names a prompt format family. The families are implemented
// natively (no Jinja engine); the model's own Jinja text only selects the
// family and supplies a default system prompt.
type ChatTemplate string

// Supported chat templates.
const (
	ChatML ChatTemplate = "chatml" // SmolLM2, Qwen2: <|im_start|>role\n…<|im_end|>\n
	Llama3 ChatTemplate = "llama3" // <|begin_of_text|><|start_header_id|>role<|end_header_id|>\n\n…<|eot_id|>
	Llama2 ChatTemplate = "llama2" // <s>[INST] <<SYS>>\n…\n<</SYS>>\n\n… [/INST] … </s>
	NoChat ChatTemplate = "none"   // no known template: "role: content" lines
)

// detectTemplate picks the family from the model's Jinja template text,
// else from its architecture and marker tokens in its vocabulary.
func detectTemplate(jinja, arch string, tok *Tokenizer) ChatTemplate {
	switch {
	case strings.Contains(jinja, "<|im_start|>"):
		return ChatML
	case strings.Contains(jinja, "<|start_header_id|>"):
		return Llama3
	case strings.Contains(jinja, "[INST]"):
		return Llama2
	}
	if _, ok := tok.ID("<|im_start|>"); ok || arch == "qwen2" {
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

// defaultSystemPrompt finds the system turn a ChatML template inserts when
// the conversation has none (SmolLM2: "You are a helpful AI assistant named
// SmolLM, trained by Hugging Face"; Qwen2.5: "You are Qwen, created by
// Alibaba Cloud. …"). Only a literal string counts; anything built from
// expressions is ignored.
func defaultSystemPrompt(jinja string) string {
	if !strings.Contains(jinja, "!= 'system'") && !strings.Contains(jinja, `!= "system"`) &&
		!strings.Contains(jinja, "not in ['system']") {
		return ""
	}
	const open = "<|im_start|>system"
	rest := jinja
	for {
		i := strings.Index(rest, open)
		if i < 0 {
			return ""
		}
		rest = rest[i+len(open):]
		body := rest
		switch {
		case strings.HasPrefix(body, `\n`):
			body = body[2:]
		case strings.HasPrefix(body, "\n"):
			body = body[1:]
		default:
			continue
		}
		end := strings.Index(body, "<|im_end|>")
		if end <= 0 {
			continue
		}
		lit := body[:end]
		if strings.ContainsAny(lit, "'\"{}+") { // an expression, not a literal
			continue
		}
		return strings.NewReplacer(`\n`, "\n", `\t`, "\t").Replace(lit)
	}
}

// ApplyChatTemplate renders messages in the model's chat format, ending with
// the assistant's turn open (add_generation_prompt).
func (t *Tokenizer) ApplyChatTemplate(msgs []Message) (string, error) {
	if t.template == ChatML && t.defaultSystem != "" && (len(msgs) == 0 || msgs[0].Role != "system") {
		msgs = append([]Message{{Role: "system", Content: t.defaultSystem}}, msgs...)
	}
	return t.template.Render(msgs)
}

// Template returns the tokenizer's chat template family.
func (t *Tokenizer) Template() ChatTemplate { return t.template }

// EncodeChat renders messages with the chat template and tokenizes the
// result, parsing the template's special tokens.
func (t *Tokenizer) EncodeChat(msgs []Message) ([]int, error) {
	text, err := t.ApplyChatTemplate(msgs)
	if err != nil {
		return nil, err
	}
	// Llama-2 and Llama-3 templates write their own BOS marker.
	addBOS := t.template != Llama2 && t.template != Llama3
	return t.Encode(text, true, addBOS), nil
}

// EncodeChat is m.Tokenizer().EncodeChat.
func (m *Model) EncodeChat(msgs []Message) ([]int, error) { return m.tok.EncodeChat(msgs) }

// Render formats messages for a template family, ending with the
// assistant's turn open.
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
		// The system text folds into the first user turn, as Llama-2-chat
		// was trained; turns must alternate user/assistant.
		var sys string
		if len(msgs) > 0 && msgs[0].Role == "system" {
			sys, msgs = msgs[0].Content, msgs[1:]
		}
		for i, m := range msgs {
			want := "user"
			if i%2 == 1 {
				want = "assistant"
			}
			if m.Role != want {
				return "", fmt.Errorf("llama2 template: message %d has role %q, want %s (roles must alternate user/assistant)", i, m.Role, want)
			}
			content := strings.TrimSpace(m.Content)
			if m.Role == "user" {
				if sys != "" && i == 0 {
					content = "<<SYS>>\n" + strings.TrimSpace(sys) + "\n<</SYS>>\n\n" + content
				}
				fmt.Fprintf(&b, "<s>[INST] %s [/INST]", content)
			} else {
				fmt.Fprintf(&b, " %s </s>", content)
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
