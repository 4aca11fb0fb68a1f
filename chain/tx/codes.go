package tx

// Codespace names Agora's ABCI result codes.
const Codespace = "agora"

// ABCI result codes of transactions and queries. Clients branch on them, so
// values never change.
const (
	CodeOK                uint32 = 0
	CodeMalformed         uint32 = 1
	CodeBadSignature      uint32 = 2
	CodeWrongChain        uint32 = 3
	CodeBadNonce          uint32 = 4
	CodeFeeTooLow         uint32 = 5
	CodeInsufficientFunds uint32 = 6
	CodeTooLarge          uint32 = 7
	CodeUnknownQuery      uint32 = 8
	CodeNotAvailable      uint32 = 9
	CodeNotFound          uint32 = 10
	CodeUnauthorized      uint32 = 11
	CodeInvalid           uint32 = 12
	CodePriceMoved        uint32 = 13
	CodeFull              uint32 = 14
	CodeRateLimited       uint32 = 15
	CodeExists            uint32 = 16
	CodeWindow            uint32 = 17
	CodeOverflow          uint32 = 18 // an amount would not fit: refused, never wrapped
	CodeJailed            uint32 = 19 // a chain validator's jail time is not over
	CodeTombstoned        uint32 = 20 // a chain validator that double-signed: never returns
	CodeInternal          uint32 = 99
)

var codeNames = map[uint32]string{
	CodeOK:                "ok",
	CodeMalformed:         "malformed",
	CodeBadSignature:      "bad_signature",
	CodeWrongChain:        "wrong_chain",
	CodeBadNonce:          "bad_nonce",
	CodeFeeTooLow:         "fee_too_low",
	CodeInsufficientFunds: "insufficient_funds",
	CodeTooLarge:          "too_large",
	CodeUnknownQuery:      "unknown_query",
	CodeNotAvailable:      "not_available",
	CodeNotFound:          "not_found",
	CodeUnauthorized:      "unauthorized",
	CodeInvalid:           "invalid",
	CodePriceMoved:        "price_moved",
	CodeFull:              "full",
	CodeRateLimited:       "rate_limited",
	CodeExists:            "exists",
	CodeWindow:            "window",
	CodeOverflow:          "overflow",
	CodeJailed:            "jailed",
	CodeTombstoned:        "tombstoned",
	CodeInternal:          "internal",
}

// CodeName is a result code's short name ("ok", "insufficient_funds", …;
// "other" for a code this build does not know): the node's metric label and
// what the explorer shows.
func CodeName(code uint32) string {
	if n, ok := codeNames[code]; ok {
		return n
	}
	return "other"
}
