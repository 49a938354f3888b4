package trust

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
)

// WriteKeyFile writes a new private key to path (mode 0600; an existing
// file is never replaced) and returns its signer. A key file lets several
// machines (a fleet of identical worker pods) sign with one key, which
// trust files then name once.
func WriteKeyFile(path string) (*Signer, error) {
	seed := make([]byte, ed25519.SeedSize)
	if _, err := rand.Read(seed); err != nil {
		return nil, fmt.Errorf("new signing key: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("signing key file: %w", err)
	}
	_, werr := f.WriteString(hex.EncodeToString(seed) + "\n")
	if err := errors.Join(werr, f.Close()); err != nil {
		return nil, fmt.Errorf("signing key file %s: %w", path, err)
	}
	return NewSigner(seed)
}

// ReadKeyFile reads a private key written by WriteKeyFile. A file that
// others (not the owner or its group) may read is refused: a Kubernetes
// Secret volume is owned by root and readable by the pod's group.
func ReadKeyFile(path string) (*Signer, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("signing key file: %w", err)
	}
	if fi.Mode().Perm()&0o007 != 0 {
		return nil, fmt.Errorf("signing key file %s has mode %04o: others can read the private key; chmod 600 %s", path, fi.Mode().Perm(), path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("signing key file: %w", err)
	}
	seed, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("signing key file %s: not a ferry signing key ('ferry key new FILE' writes one)", path)
	}
	return NewSigner(seed)
}
