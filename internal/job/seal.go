package job

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
)

// seal encrypts b with AES-256-GCM under a key derived from key; the nonce
// is prepended.
func seal(key, b []byte) ([]byte, error) {
	aead, err := newAEAD(key)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return aead.Seal(nonce, nonce, b, []byte("ferry job snapshot v1")), nil
}

// open reverses seal.
func open(key, b []byte) ([]byte, error) {
	aead, err := newAEAD(key)
	if err != nil {
		return nil, err
	}
	if len(b) < aead.NonceSize() {
		return nil, errors.New("too short to be sealed")
	}
	out, err := aead.Open(nil, b[:aead.NonceSize()], b[aead.NonceSize():], []byte("ferry job snapshot v1"))
	if err != nil {
		return nil, fmt.Errorf("cannot decrypt (another state key?): %w", err)
	}
	return out, nil
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	k := sha256.Sum256(append([]byte("ferry snapshot key\x00"), key...))
	block, err := aes.NewCipher(k[:])
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}
