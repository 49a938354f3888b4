package trust

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/nats-io/nats.go"

	"github.com/ferry-dev/ferry/internal/secret"
)

// Header names of a signed message.
const (
	HeaderKey = "Ferry-Key"
	HeaderSig = "Ferry-Sig"
)

// SpecSubject is the subject a job spec is signed under.
const SpecSubject = "spec"

// KeySecretName is the secret in ferry's store that holds this machine's
// signing key (field "seed": 32 bytes, hex).
const KeySecretName = "ferry-signing-key"

// keyPrefix starts a public key's text form.
const keyPrefix = "ferry-ed25519:"

// Why a message is refused; Verify's errors wrap one of these.
var (
	ErrUnsigned   = errors.New("unsigned")
	ErrUntrusted  = errors.New("signed by a key this process does not trust")
	ErrBadSig     = errors.New("bad signature (tampered, or replayed into another job or subject)")
	ErrBadKeyText = errors.New("not a ferry public key")
)

// PublicKey is an ed25519 public key.
type PublicKey [ed25519.PublicKeySize]byte

// String is the key's text form: "ferry-ed25519:" and the key in
// unpadded base64url. It is what `ferry key show` prints and --trust takes.
func (k PublicKey) String() string {
	return keyPrefix + base64.RawURLEncoding.EncodeToString(k[:])
}

// ParseKey parses a key's text form.
func ParseKey(s string) (PublicKey, error) {
	var k PublicKey
	s = strings.TrimSpace(s)
	rest, ok := strings.CutPrefix(s, keyPrefix)
	if !ok {
		return k, fmt.Errorf("%q: %w (want %s…, as 'ferry key show' prints)", short(s), ErrBadKeyText, keyPrefix)
	}
	b, err := base64.RawURLEncoding.DecodeString(rest)
	if err != nil || len(b) != len(k) {
		return k, fmt.Errorf("%q: %w (bad base64url or length)", short(s), ErrBadKeyText)
	}
	copy(k[:], b)
	return k, nil
}

func short(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

// Signer signs with one private key.
type Signer struct {
	priv ed25519.PrivateKey
	pub  PublicKey
}

// NewSigner returns a signer for the key with this 32-byte seed.
func NewSigner(seed []byte) (*Signer, error) {
	if len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("signing key: want a %d-byte seed, have %d bytes", ed25519.SeedSize, len(seed))
	}
	priv := ed25519.NewKeyFromSeed(seed)
	s := &Signer{priv: priv}
	copy(s.pub[:], priv.Public().(ed25519.PublicKey))
	return s, nil
}

// Generate returns a signer with a new random key (tests, and processes
// given no key: they trust only themselves).
func Generate() *Signer {
	seed := make([]byte, ed25519.SeedSize)
	_, _ = rand.Read(seed) // never fails (crypto/rand)
	s, _ := NewSigner(seed)
	return s
}

// Public returns the signer's public key.
func (s *Signer) Public() PublicKey { return s.pub }

func message(subject, job string, body []byte) []byte {
	var b bytes.Buffer
	b.Grow(len(body) + len(subject) + len(job) + 16)
	b.WriteString("ferry-sig-v1\n")
	b.WriteString(subject)
	b.WriteByte('\n')
	b.WriteString(job)
	b.WriteByte('\n')
	b.Write(body)
	return b.Bytes()
}

// Sig is a detached signature with the key that made it (a job spec's).
type Sig struct {
	Key string `json:"key"`
	Sig string `json:"sig"`
}

// SignBytes signs body for job under subject.
func (s *Signer) SignBytes(subject, job string, body []byte) Sig {
	return Sig{Key: s.pub.String(), Sig: base64.StdEncoding.EncodeToString(ed25519.Sign(s.priv, message(subject, job, body)))}
}

// Header returns the headers that sign body for job under subject.
func (s *Signer) Header(subject, job string, body []byte) nats.Header {
	sig := s.SignBytes(subject, job, body)
	h := nats.Header{}
	h.Set(HeaderKey, sig.Key)
	h.Set(HeaderSig, sig.Sig)
	return h
}

// Msg returns a message for subject carrying body signed for job.
func (s *Signer) Msg(subject, job string, body []byte) *nats.Msg {
	return &nats.Msg{Subject: subject, Data: body, Header: s.Header(subject, job, body)}
}

// Set is the public keys a process trusts. The zero value trusts nothing.
type Set struct {
	keys map[PublicKey]bool
}

// NewSet returns a set of these keys.
func NewSet(keys ...PublicKey) *Set {
	s := &Set{keys: map[PublicKey]bool{}}
	for _, k := range keys {
		s.keys[k] = true
	}
	return s
}

// Add adds keys to the set.
func (s *Set) Add(keys ...PublicKey) {
	if s.keys == nil {
		s.keys = map[PublicKey]bool{}
	}
	for _, k := range keys {
		s.keys[k] = true
	}
}

// Keys returns the trusted keys, sorted by their text.
func (s *Set) Keys() []PublicKey {
	var out []PublicKey
	if s == nil {
		return out
	}
	for k := range s.keys {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}

// Trusts reports whether k is in the set.
func (s *Set) Trusts(k PublicKey) bool { return s != nil && s.keys[k] }

// VerifySig checks a detached signature of body for job under subject.
func (s *Set) VerifySig(subject, job string, body []byte, sig Sig) error {
	if sig.Key == "" && sig.Sig == "" {
		return ErrUnsigned
	}
	k, err := ParseKey(sig.Key)
	if err != nil {
		return fmt.Errorf("%w: signer key: %w", ErrBadSig, err)
	}
	if !s.Trusts(k) {
		return fmt.Errorf("%w (%s)", ErrUntrusted, k)
	}
	raw, err := base64.StdEncoding.DecodeString(sig.Sig)
	if err != nil || len(raw) != ed25519.SignatureSize {
		return fmt.Errorf("%w: malformed signature", ErrBadSig)
	}
	if !ed25519.Verify(ed25519.PublicKey(k[:]), message(subject, job, body), raw) {
		return fmt.Errorf("%w (key %s)", ErrBadSig, k)
	}
	return nil
}

// Verify checks the signature headers of a message's body for job under
// subject.
func (s *Set) Verify(subject, job string, body []byte, h nats.Header) error {
	if h == nil {
		return ErrUnsigned
	}
	return s.VerifySig(subject, job, body, Sig{Key: h.Get(HeaderKey), Sig: h.Get(HeaderSig)})
}

// ReadFile reads public keys from a file: one a line; blank lines and
// lines starting with # are ignored; a key may be followed by a comment
// after whitespace.
func ReadFile(path string) ([]PublicKey, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("trust file: %w", err)
	}
	defer f.Close()
	var out []PublicKey
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		field := strings.Fields(line)[0]
		k, err := ParseKey(field)
		if err != nil {
			return nil, fmt.Errorf("trust file %s line %d: %w", path, n, err)
		}
		out = append(out, k)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("trust file %s: %w", path, err)
	}
	return out, nil
}

// LoadOrCreate returns this machine's signer, from the secret
// [KeySecretName] of ferry's secret store, creating the key on first use.
func LoadOrCreate(ctx context.Context, s *secret.Store) (*Signer, error) {
	f, err := s.Get(ctx, KeySecretName)
	if err == nil {
		if v := f["seed"]; !v.IsZero() {
			seed, err := hex.DecodeString(v.Reveal())
			if err != nil {
				return nil, fmt.Errorf("signing key (secret %s): bad seed: %w", KeySecretName, err)
			}
			return NewSigner(seed)
		}
	} else if !errors.Is(err, secret.ErrNotFound) {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	seed := make([]byte, ed25519.SeedSize)
	if _, err := rand.Read(seed); err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	// Another process may be creating it at the same moment: one wins.
	f, err = s.SetIfAbsent(ctx, KeySecretName, secret.Fields{"seed": secret.New(hex.EncodeToString(seed))})
	if err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	seed, err = hex.DecodeString(f["seed"].Reveal())
	if err != nil {
		return nil, fmt.Errorf("signing key (secret %s): bad seed: %w", KeySecretName, err)
	}
	return NewSigner(seed)
}
