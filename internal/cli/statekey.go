package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/ferry-dev/ferry/internal/secret"
)

// stateKeyName is the secret that holds the key encrypting the embedded
// JetStream store and the job state snapshots at rest.
const stateKeyName = "ferry-state-key"

// stateKey returns the state encryption key from ferry's secret store,
// creating it (32 random bytes) on first use.
func stateKey(ctx context.Context) (string, error) {
	s, err := secret.Open(secret.Options{})
	if err != nil {
		return "", fmt.Errorf("state encryption key: %w", err)
	}
	f, err := s.Get(ctx, stateKeyName)
	if err == nil {
		if k := f["key"]; !k.IsZero() {
			return k.Reveal(), nil
		}
	} else if !errors.Is(err, secret.ErrNotFound) {
		return "", fmt.Errorf("state encryption key: %w", err)
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	k := hex.EncodeToString(b)
	if err := s.Set(ctx, stateKeyName, secret.Fields{"key": secret.New(k)}); err != nil {
		return "", fmt.Errorf("state encryption key: %w", err)
	}
	return k, nil
}
