# The README's test command is `make test`; .ci/run runs exactly that.
GO ?= go

.PHONY: test test-arm64 build fuzz bench vet

build:
	$(GO) build -o bin/agora ./cmd/agora

test:
	$(GO) vet ./...
	GOARCH=arm64 $(GO) vet ./engine/...
	$(GO) test -race -count=1 -timeout 30m ./...
	$(MAKE) test-arm64

# The engine's tests on arm64 under qemu-user: its NEON kernels, and the same
# bits as on amd64 (TestForwardBitsPinned). With and without the dot-product
# extension. .ci/run installs qemu-user; without it this step says so and skips.
test-arm64:
	@if ! command -v qemu-aarch64 >/dev/null 2>&1; then echo "test-arm64: qemu-aarch64 not found (apt-get install qemu-user); skipped"; exit 0; fi; \
	set -e; GOARCH=arm64 $(GO) test -c -o bin/engine-arm64.test ./engine/; \
	cd engine && qemu-aarch64 -cpu max ../bin/engine-arm64.test -test.count=1 && \
	qemu-aarch64 -cpu cortex-a53 ../bin/engine-arm64.test -test.count=1 -test.run 'Q8|ARM64|Integer|Matmul|Forward'

# Short fuzzing runs of every decoder of outside bytes (FUZZTIME per target).
FUZZTIME ?= 30s
fuzz:
	$(GO) test -run XXX -fuzz FuzzDecode -fuzztime $(FUZZTIME) ./chain/tx/
	$(GO) test -run XXX -fuzz FuzzCheckTx -fuzztime $(FUZZTIME) ./chain/
	$(GO) test -run XXX -fuzz FuzzParse -fuzztime $(FUZZTIME) ./address/
	$(GO) test -run XXX -fuzz FuzzDecodeKeyFile -fuzztime $(FUZZTIME) ./keys/
	$(GO) test -run XXX -fuzz FuzzParseScenario -fuzztime $(FUZZTIME) ./sim/
	$(GO) test -run XXX -fuzz FuzzParse -fuzztime $(FUZZTIME) ./engine/gguf/
	$(GO) test -run XXX -fuzz FuzzTokenizerRoundTrip -fuzztime $(FUZZTIME) ./engine/
	$(GO) test -run XXX -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME) ./engine/
	$(GO) test -run XXX -fuzz FuzzLoadMatrix -fuzztime $(FUZZTIME) ./engine/
	$(GO) test -run XXX -fuzz FuzzParseFixed -fuzztime $(FUZZTIME) ./yuma/
	$(GO) test -run XXX -fuzz FuzzParseHeaders -fuzztime $(FUZZTIME) ./wire/
	$(GO) test -run XXX -fuzz FuzzReceipt -fuzztime $(FUZZTIME) ./wire/
	$(GO) test -run XXX -fuzz FuzzDecodeEnvelope -fuzztime $(FUZZTIME) ./e2e/
	$(GO) test -run XXX -fuzz FuzzReplyOpen -fuzztime $(FUZZTIME) ./e2e/
	$(GO) test -run XXX -fuzz FuzzParsePaymentSignature -fuzztime $(FUZZTIME) ./gateway/
	$(GO) test -run XXX -fuzz FuzzDecode -fuzztime $(FUZZTIME) ./x402/
	$(GO) test -run XXX -fuzz FuzzMulDivCeil -fuzztime $(FUZZTIME) ./agr/
	$(GO) test -run XXX -fuzz FuzzReadStream -fuzztime $(FUZZTIME) ./agent/
	$(GO) test -run XXX -fuzz '^FuzzDecodeChunk$$' -fuzztime $(FUZZTIME) ./chain/snapshot/
	$(GO) test -run XXX -fuzz '^FuzzDecodeMetadata$$' -fuzztime $(FUZZTIME) ./chain/snapshot/
	$(GO) test -run XXX -fuzz '^FuzzRestoreChunk$$' -fuzztime $(FUZZTIME) ./chain/snapshot/
	$(GO) test -run XXX -fuzz FuzzParseGentx -fuzztime $(FUZZTIME) ./cmd/agora/
	$(GO) test -run XXX -fuzz FuzzRequest -fuzztime $(FUZZTIME) ./explorer/
	$(GO) test -run XXX -fuzz FuzzRoyaltyMessages -fuzztime $(FUZZTIME) ./chain/
	$(GO) test -run XXX -fuzz FuzzVerify -fuzztime $(FUZZTIME) ./dataset/
	$(GO) test -run XXX -fuzz FuzzLoadProof -fuzztime $(FUZZTIME) ./dataset/

bench: build
	./bin/agora bench transfers
