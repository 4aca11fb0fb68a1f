package wire

import (
	"encoding/json"
	"net/http"
)

// ErrorBody is the OpenAI error shape.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is what an OpenAI error says.
type ErrorDetail struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Code    *string `json:"code"`
}

// WriteError answers with an OpenAI-shaped error.
func WriteError(w http.ResponseWriter, status int, typ, msg string) {
	var e ErrorBody
	e.Error.Message, e.Error.Type = msg, typ
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(e)
}
