package secret

import (
	"fmt"
	"log/slog"
)

// Redacted is how a [Secret] prints.
const Redacted = "REDACTED"

// Secret holds a secret value. It prints as [Redacted] through fmt (every
// verb), log/slog and encoding/json; only [Secret.Reveal] returns the value.
// The value sits behind a pointer so that even fmt's reflection on an
// unexported struct field, which bypasses methods, shows an address and
// not the value. The zero Secret is empty.
type Secret struct {
	p *string
}

// New returns a Secret holding v.
func New(v string) Secret { return Secret{p: &v} }

// Reveal returns the secret value. Call it only where the value is handed
// to the code that uses it (a request signer), never to build a message.
func (s Secret) Reveal() string {
	if s.p == nil {
		return ""
	}
	return *s.p
}

// IsZero reports whether s is empty.
func (s Secret) IsZero() bool { return s.Reveal() == "" }

// String returns [Redacted].
func (s Secret) String() string { return Redacted }

// GoString returns [Redacted] (the %#v verb).
func (s Secret) GoString() string { return Redacted }

// Format prints [Redacted] for every verb and flag.
func (s Secret) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(Redacted)) }

// LogValue implements [slog.LogValuer].
func (s Secret) LogValue() slog.Value { return slog.StringValue(Redacted) }

// MarshalJSON returns the JSON string "REDACTED".
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + Redacted + `"`), nil }

// MarshalText returns "REDACTED" (map keys, text encoders).
func (s Secret) MarshalText() ([]byte, error) { return []byte(Redacted), nil }

var (
	_ fmt.Stringer   = Secret{}
	_ fmt.GoStringer = Secret{}
	_ fmt.Formatter  = Secret{}
	_ slog.LogValuer = Secret{}
)
