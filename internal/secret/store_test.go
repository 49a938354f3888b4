package secret

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func init() { scryptWorkFactor = 10 } // fast tests; age reads the factor from the file

const canary = "LEAKCANARY-wJalrXUtnFEMI-K7MDENG-bPxRfiCY"

// newStore returns a store in a fresh directory, in identity mode unless
// the caller set a passphrase variable first.
func newStore(t *testing.T) *Store {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "ferry")
	s, err := Open(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func clearEnv(t *testing.T) {
	t.Helper()
	t.Setenv(EnvPassphrase, "")
	t.Setenv(EnvPassphraseCommand, "")
}

func awsFields(secretKey string) Fields {
	return Fields{FieldAccessKeyID: New("AKIAEXAMPLE"), FieldSecretAccessKey: New(secretKey)}
}

func TestIdentityMode(t *testing.T) {
	clearEnv(t)
	ctx := context.Background()
	s := newStore(t)
	if s.Mode() != ModeIdentity {
		t.Fatalf("mode %v", s.Mode())
	}
	// Reading a store that does not exist yet creates nothing.
	names, err := s.Names(ctx)
	if err != nil || len(names) != 0 {
		t.Fatalf("Names on an empty store: %v, %v", names, err)
	}
	if _, err := os.Stat(s.Dir()); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("reading created the directory: %v", err)
	}
	if err := s.Set(ctx, "prod", awsFields(canary)); err != nil {
		t.Fatal(err)
	}
	if err := s.Set(ctx, "b.other_1", awsFields("x")); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]os.FileMode{
		s.Dir():                              0o700 | os.ModeDir,
		filepath.Join(s.Dir(), IdentityFile): 0o600,
		filepath.Join(s.Dir(), StoreFile):    0o600,
	} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != want {
			t.Errorf("%s: mode %v, want %v", path, fi.Mode(), want)
		}
	}
	raw, _ := os.ReadFile(filepath.Join(s.Dir(), StoreFile))
	if bytes.Contains(raw, []byte(canary)) || bytes.Contains(raw, []byte("prod")) {
		t.Fatal("store file holds plaintext")
	}
	if !bytes.HasPrefix(raw, []byte("age-encryption.org/v1\n-> X25519 ")) {
		t.Fatalf("store is not an X25519 age file: %.40q", raw)
	}

	// A second Store (another process) reads what the first wrote.
	s2, err := Open(Options{Dir: s.Dir()})
	if err != nil {
		t.Fatal(err)
	}
	f, err := s2.Get(ctx, "prod")
	if err != nil {
		t.Fatal(err)
	}
	if f[FieldSecretAccessKey].Reveal() != canary {
		t.Fatal("round trip lost the value")
	}
	names, _ = s2.Names(ctx)
	if strings.Join(names, ",") != "b.other_1,prod" {
		t.Fatalf("names %v", names)
	}
	if err := s2.Remove(ctx, "prod"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "prod"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get after Remove: %v", err)
	}
	if err := s.Remove(ctx, "prod"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Remove of a missing secret: %v", err)
	}
	left, _ := filepath.Glob(filepath.Join(s.Dir(), ".*tmp*"))
	if len(left) != 0 {
		t.Fatalf("temporary files left: %v", left)
	}
}

func TestPassphraseMode(t *testing.T) {
	clearEnv(t)
	ctx := context.Background()
	t.Setenv(EnvPassphrase, "correct horse battery staple")
	s := newStore(t)
	if s.Mode() != ModePassphrase {
		t.Fatalf("mode %v", s.Mode())
	}
	if err := s.Set(ctx, "prod", awsFields(canary)); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(s.Dir(), IdentityFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("passphrase mode created an identity: %v", err)
	}
	raw, _ := os.ReadFile(filepath.Join(s.Dir(), StoreFile))
	if !bytes.HasPrefix(raw, []byte("age-encryption.org/v1\n-> scrypt ")) {
		t.Fatalf("store is not passphrase-encrypted: %.40q", raw)
	}

	t.Run("command", func(t *testing.T) {
		t.Setenv(EnvPassphrase, "")
		t.Setenv(EnvPassphraseCommand, "printf '%s\\n' 'correct horse battery staple'")
		s2, err := Open(Options{Dir: s.Dir()})
		if err != nil {
			t.Fatal(err)
		}
		if f, err := s2.Get(ctx, "prod"); err != nil || f[FieldSecretAccessKey].Reveal() != canary {
			t.Fatalf("Get with the passphrase command: %v", err)
		}
	})
	t.Run("wrong passphrase", func(t *testing.T) {
		t.Setenv(EnvPassphrase, "wrong")
		s2, _ := Open(Options{Dir: s.Dir()})
		_, err := s2.Get(ctx, "prod")
		if err == nil || !strings.Contains(err.Error(), "wrong passphrase") {
			t.Fatalf("want a wrong passphrase error, got %v", err)
		}
		if err := s2.Set(ctx, "other", awsFields("y")); err == nil {
			t.Fatal("Set with a wrong passphrase overwrote the store")
		}
	})
	t.Run("failing command", func(t *testing.T) {
		t.Setenv(EnvPassphrase, "")
		t.Setenv(EnvPassphraseCommand, "echo oops >&2; exit 3")
		var stderr bytes.Buffer
		s2, _ := Open(Options{Dir: s.Dir(), Stderr: &stderr})
		_, err := s2.Get(ctx, "prod")
		if err == nil || !strings.Contains(err.Error(), EnvPassphraseCommand+" failed") {
			t.Fatalf("got %v", err)
		}
		if !strings.Contains(stderr.String(), "oops") {
			t.Fatalf("command's stderr not passed on: %q", stderr.String())
		}
	})
	t.Run("both set", func(t *testing.T) {
		t.Setenv(EnvPassphraseCommand, "echo x")
		if _, err := Open(Options{Dir: s.Dir()}); err == nil || !strings.Contains(err.Error(), "both") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("identity mode on a passphrase store", func(t *testing.T) {
		clearEnv(t)
		s2, _ := Open(Options{Dir: s.Dir()})
		_, err := s2.Get(ctx, "prod")
		if err == nil || !strings.Contains(err.Error(), "set "+EnvPassphrase) {
			t.Fatalf("got %v", err)
		}
	})
}

func TestPassphraseOnIdentityStore(t *testing.T) {
	clearEnv(t)
	ctx := context.Background()
	s := newStore(t)
	if err := s.Set(ctx, "prod", awsFields(canary)); err != nil {
		t.Fatal(err)
	}
	t.Setenv(EnvPassphrase, "pw")
	s2, _ := Open(Options{Dir: s.Dir()})
	_, err := s2.Get(ctx, "prod")
	if err == nil || !strings.Contains(err.Error(), "unset "+EnvPassphrase) {
		t.Fatalf("got %v", err)
	}
	// Identity missing: say so, do not create a new one over the old store.
	clearEnv(t)
	os.Remove(filepath.Join(s.Dir(), IdentityFile))
	s3, _ := Open(Options{Dir: s.Dir()})
	if err := s3.Set(ctx, "x", awsFields("y")); err == nil || !strings.Contains(err.Error(), "is missing") {
		t.Fatalf("got %v", err)
	}
}

func TestPermissionsRefused(t *testing.T) {
	if os.Getenv("GOOS") == "windows" {
		t.Skip("mode bits")
	}
	clearEnv(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		file string // relative to the dir; "" is the dir itself
		mode os.FileMode
	}{
		{"store world-readable", StoreFile, 0o644},
		{"store group-readable", StoreFile, 0o640},
		{"identity group-readable", IdentityFile, 0o640},
		{"identity world-writable", IdentityFile, 0o602},
		{"dir group-listable", "", 0o750},
		{"dir world-readable", "", 0o755},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			if err := s.Set(ctx, "prod", awsFields(canary)); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(s.Dir(), tc.file)
			if err := os.Chmod(path, tc.mode); err != nil {
				t.Fatal(err)
			}
			s2, _ := Open(Options{Dir: s.Dir()})
			for op, err := range map[string]error{
				"get": func() error { _, err := s2.Get(ctx, "prod"); return err }(),
				"set": s2.Set(ctx, "other", awsFields("y")),
			} {
				if err == nil || !strings.Contains(err.Error(), "accessible by group or others") || !strings.Contains(err.Error(), "chmod") {
					t.Errorf("%s: want a refusal, got %v", op, err)
				} else if strings.Contains(err.Error(), "\n") {
					t.Errorf("%s: error is not one line: %q", op, err)
				}
			}
		})
	}
}

func TestCorruptStore(t *testing.T) {
	clearEnv(t)
	ctx := context.Background()
	s := newStore(t)
	if err := s.Set(ctx, "prod", awsFields(canary)); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(s.Dir(), StoreFile)
	raw, _ := os.ReadFile(path)
	raw[len(raw)-5] ^= 1
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	s2, _ := Open(Options{Dir: s.Dir()})
	if _, err := s2.Get(ctx, "prod"); err == nil || !strings.Contains(err.Error(), "corrupt") {
		t.Fatalf("got %v", err)
	}
}

// Concurrent writers in separate Stores (processes) lose no update, and a
// reader never sees a partial file.
func TestConcurrentUpdates(t *testing.T) {
	clearEnv(t)
	ctx := context.Background()
	s := newStore(t)
	if err := s.Set(ctx, "seed", awsFields("z")); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for w := range 4 {
		wg.Go(func() {
			st, _ := Open(Options{Dir: s.Dir()})
			for i := range 5 {
				if err := st.Set(ctx, fmt.Sprintf("w%d-%d", w, i), awsFields("v")); err != nil {
					errs <- err
				}
			}
		})
	}
	done := make(chan struct{})
	var rwg sync.WaitGroup
	rwg.Add(1)
	go func() {
		defer rwg.Done()
		st, _ := Open(Options{Dir: s.Dir()})
		for {
			select {
			case <-done:
				return
			default:
			}
			if _, err := st.Get(ctx, "seed"); err != nil {
				errs <- fmt.Errorf("reader: %w", err)
				return
			}
		}
	}()
	wg.Wait()
	close(done)
	rwg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	names, err := s.Names(ctx)
	if err != nil || len(names) != 21 {
		t.Fatalf("%d names (%v), want 21", len(names), err)
	}
}

func TestAWSCredentialsRotation(t *testing.T) {
	clearEnv(t)
	ctx := context.Background()
	s := newStore(t)
	if _, err := s.AWSCredentials(ctx, "prod"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing secret: %v", err)
	}
	if err := s.Set(ctx, "half", Fields{FieldAccessKeyID: New("AKIA")}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AWSCredentials(ctx, "half"); err == nil || !strings.Contains(err.Error(), "secret_access_key") {
		t.Fatalf("incomplete secret: %v", err)
	}
	if err := s.Set(ctx, "prod", awsFields("first")); err != nil {
		t.Fatal(err)
	}
	p, err := s.AWSCredentials(ctx, "prod")
	if err != nil {
		t.Fatal(err)
	}
	c, err := p.Retrieve(ctx)
	if err != nil || c.SecretAccessKey != "first" || c.AccessKeyID != "AKIAEXAMPLE" {
		t.Fatalf("retrieve: %+v %v", c.Source, err)
	}
	if !c.CanExpire || time.Until(c.Expires) > CredentialRefresh || time.Until(c.Expires) < CredentialRefresh-10*time.Second {
		t.Fatalf("expiry %v", c.Expires)
	}
	// Another process rotates it: the next refresh sees the new value.
	other, _ := Open(Options{Dir: s.Dir()})
	f := awsFields("second")
	f[FieldSessionToken] = New("tok")
	if err := other.Set(ctx, "prod", f); err != nil {
		t.Fatal(err)
	}
	c, err = (&awsProvider{s: s, name: "prod"}).Retrieve(ctx)
	if err != nil || c.SecretAccessKey != "second" || c.SessionToken != "tok" {
		t.Fatalf("after rotation: %v", err)
	}
}

func TestValidateName(t *testing.T) {
	for name, ok := range map[string]bool{
		"prod": true, "a": true, "A.b_c-9": true, strings.Repeat("x", 64): true,
		"": false, ".hidden": false, "-x": false, "a/b": false, "a b": false, "ü": false,
		strings.Repeat("x", 65): false, "../etc": false,
	} {
		if err := ValidateName(name); (err == nil) != ok {
			t.Errorf("ValidateName(%q) = %v", name, err)
		}
	}
}

func TestSecretRedacted(t *testing.T) {
	s := New(canary)
	type inner struct {
		Public  string
		Key     Secret
		private Secret
	}
	v := inner{Public: "pub", Key: s, private: s}
	f := Fields{FieldSecretAccessKey: s}
	var outs []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%10.3s", "%T"} {
		outs = append(outs, fmt.Sprintf(verb, s), fmt.Sprintf(verb, &s), fmt.Sprintf(verb, v), fmt.Sprintf(verb, &v), fmt.Sprintf(verb, f), fmt.Sprintf(verb, []Secret{s}))
	}
	outs = append(outs, fmt.Sprint(s, v), fmt.Sprintln(v), s.String(), s.GoString(), fmt.Errorf("wrap: %v", v).Error())

	for _, b := range []func() ([]byte, error){
		func() ([]byte, error) { return json.Marshal(s) },
		func() ([]byte, error) { return json.Marshal(v) },
		func() ([]byte, error) { return json.Marshal(f) },
		func() ([]byte, error) { return json.Marshal(map[Secret]int{s: 1}) },
		func() ([]byte, error) { return json.MarshalIndent(&v, "", " ") },
	} {
		out, err := b()
		if err != nil {
			t.Fatal(err)
		}
		outs = append(outs, string(out))
	}
	var buf bytes.Buffer
	for _, h := range []slog.Handler{
		slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}),
		slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}),
	} {
		l := slog.New(h)
		l.Debug("secret", "s", s, "v", v, "f", f, slog.Any("p", &s), slog.Group("g", "s", s))
		l.With("s", s).Info("with")
	}
	outs = append(outs, buf.String())

	all := strings.Join(outs, "\n")
	if strings.Contains(all, canary) || strings.Contains(all, "LEAKCANARY") {
		t.Fatalf("secret leaked:\n%s", all)
	}
	if !strings.Contains(all, Redacted) {
		t.Fatal("nothing printed REDACTED")
	}
	if s.Reveal() != canary || (Secret{}).Reveal() != "" || !(Secret{}).IsZero() {
		t.Fatal("Reveal")
	}
}
