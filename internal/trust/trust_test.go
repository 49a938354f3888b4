package trust

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSignVerify(t *testing.T) {
	a, b := Generate(), Generate()
	body := []byte(`{"v":2,"job":"j1","kind":"copy","objs":[{"k":"a"}]}`)
	subj := "ferry.work.j1.copy"
	h := a.Header(subj, "j1", body)
	tampered := []byte(strings.Replace(string(body), `"a"`, `"b"`, 1))
	cases := []struct {
		name    string
		set     *Set
		subject string
		job     string
		body    []byte
		hdr     map[string][]string
		want    error
	}{
		{"good", NewSet(a.Public()), subj, "j1", body, h, nil},
		{"trusted among others", NewSet(b.Public(), a.Public()), subj, "j1", body, h, nil},
		{"untrusted signer", NewSet(b.Public()), subj, "j1", body, h, ErrUntrusted},
		{"empty set", &Set{}, subj, "j1", body, h, ErrUntrusted},
		{"unsigned", NewSet(a.Public()), subj, "j1", body, nil, ErrUnsigned},
		{"tampered body", NewSet(a.Public()), subj, "j1", tampered, h, ErrBadSig},
		{"replayed into another job", NewSet(a.Public()), "ferry.work.j2.copy", "j2", body, h, ErrBadSig},
		{"moved to another subject", NewSet(a.Public()), "ferry.work.j1.delete", "j1", body, h, ErrBadSig},
		{"key swapped", NewSet(a.Public(), b.Public()), subj, "j1", body, map[string][]string{HeaderKey: {b.Public().String()}, HeaderSig: h[HeaderSig]}, ErrBadSig},
		{"garbage key", NewSet(a.Public()), subj, "j1", body, map[string][]string{HeaderKey: {"x"}, HeaderSig: h[HeaderSig]}, ErrBadSig},
		{"garbage sig", NewSet(a.Public()), subj, "j1", body, map[string][]string{HeaderKey: h[HeaderKey], HeaderSig: {"!!"}}, ErrBadSig},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.set.Verify(c.subject, c.job, c.body, c.hdr)
			if c.want == nil && err != nil || c.want != nil && !errors.Is(err, c.want) {
				t.Fatalf("Verify: %v, want %v", err, c.want)
			}
		})
	}
}

func TestKeyText(t *testing.T) {
	k := Generate().Public()
	got, err := ParseKey("  " + k.String() + "\n")
	if err != nil || got != k {
		t.Fatalf("ParseKey(String()) = %v, %v", got, err)
	}
	for _, bad := range []string{"", "ed25519:abc", keyPrefix + "abc", keyPrefix + strings.Repeat("A", 44)} {
		if _, err := ParseKey(bad); !errors.Is(err, ErrBadKeyText) {
			t.Errorf("ParseKey(%q) = %v, want ErrBadKeyText", bad, err)
		}
	}
}

func TestReadFile(t *testing.T) {
	a, b := Generate().Public(), Generate().Public()
	p := filepath.Join(t.TempDir(), "trusted")
	body := fmt.Sprintf("# coordinator\n%s  coordinator host\n\n%s\n", a, b)
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	keys, err := ReadFile(p)
	if err != nil || len(keys) != 2 || keys[0] != a || keys[1] != b {
		t.Fatalf("ReadFile = %v, %v", keys, err)
	}
	if err := os.WriteFile(p, []byte("# ok\nnot-a-key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadFile(p); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("ReadFile of a bad line: %v, want an error naming line 2", err)
	}
}

// workBody is a copy batch of n objects as the wire format has it (keys of
// about 40 bytes).
func workBody(job string, batch, n int) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, `{"v":2,"job":%q,"kind":"copy","id":"%064d","n":1,"objs":[`, job, batch)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"k":"photos/2024/%04d/IMG_%06d.jpg","s":1234567,"e":"d41d8cd98f00b204e9800998ecf8427e","m":1700000000000000000}`, batch, i)
	}
	b.WriteString("]}")
	return []byte(b.String())
}

// BenchmarkSignVerify10kObjects signs and verifies the work of a job of
// 10,000 objects: 100 copy batches of 100 objects (the default batch) and
// their 100 Finals (about the same size), each signed by one worker and
// verified by another. One iteration is the whole job's signing cost.
func BenchmarkSignVerify10kObjects(b *testing.B) {
	s := Generate()
	set := NewSet(s.Public())
	bodies := make([][]byte, 200)
	for i := range bodies {
		bodies[i] = workBody("job1", i, 100)
	}
	subj := "ferry.work.job1.copy"
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		for _, body := range bodies {
			h := s.Header(subj, "job1", body)
			if err := set.Verify(subj, "job1", body, h); err != nil {
				b.Fatal(err)
			}
		}
	}
}
