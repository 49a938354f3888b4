package secret

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/ferry-dev/ferry/internal/atomicfile"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"filippo.io/age"

	"github.com/ferry-dev/ferry/internal/fslock"
)

// Environment variables and file names; see the package documentation.
const (
	EnvConfigDir         = "FERRY_CONFIG_DIR"
	EnvPassphrase        = "FERRY_SECRETS_PASSPHRASE"
	EnvPassphraseCommand = "FERRY_SECRETS_PASSPHRASE_COMMAND"

	StoreFile    = "secrets.age"
	IdentityFile = "identity.txt"
	LockFile     = "secrets.lock"
)

// Field names of an S3 credential secret.
const (
	FieldAccessKeyID     = "access_key_id"
	FieldSecretAccessKey = "secret_access_key"
	FieldSessionToken    = "session_token"
)

// maxFileSize bounds what is read from the store and identity files.
const maxFileSize = 4 << 20

// storeVersion is the "version" of the plaintext JSON ferry writes.
const storeVersion = 1

// ErrNotFound is returned (wrapped) for a secret name that is not stored.
var ErrNotFound = errors.New("no such secret")

// Mode says how the store file is encrypted.
type Mode int

const (
	// ModeIdentity encrypts to the X25519 identity in identity.txt.
	ModeIdentity Mode = iota
	// ModePassphrase encrypts to a passphrase (age scrypt recipient).
	ModePassphrase
)

func (m Mode) String() string {
	if m == ModePassphrase {
		return "passphrase"
	}
	return "identity"
}

// Fields are the named values of one secret.
type Fields map[string]Secret

var nameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9._-]{0,63}$`)

// ValidateName checks a secret's name: 1 to 64 characters from
// [a-zA-Z0-9._-], starting with a letter or digit.
func ValidateName(name string) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("invalid secret name %q: want 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit", name)
	}
	return nil
}

// Options configure [Open]. The zero value uses the environment.
type Options struct {
	// Dir is the configuration directory; "" means [DefaultDir].
	Dir string
	// Stderr receives the passphrase command's standard error; nil means
	// os.Stderr.
	Stderr io.Writer
	// ScryptWorkFactor is log2 of the scrypt cost of a passphrase-encrypted
	// store when it is written; 0 means 18, age's default. (Reading uses
	// the file's own factor.) Only tests lower it.
	ScryptWorkFactor int
}

// Store is the encrypted store of named secrets in one directory. It is
// safe for concurrent use, and several processes may use one store: updates
// take a file lock, and a write replaces the store file atomically, so a
// reader sees the store before or after an update, never a mix.
type Store struct {
	dir        string
	mode       Mode
	passCmd    string
	stderr     io.Writer
	workFactor int // scrypt log2(N) for new passphrase-encrypted files

	mu    sync.Mutex
	pass  Secret // the passphrase, once known
	cache *cached
}

// cached is the last store file decrypted, valid while the file is the same.
type cached struct {
	fi      os.FileInfo
	secrets map[string]map[string]string
}

// scryptWorkFactor is age's default; this package's tests lower it.
var scryptWorkFactor = 18

// DefaultDir returns $FERRY_CONFIG_DIR, else $XDG_CONFIG_HOME/ferry (when
// absolute), else ~/.config/ferry.
func DefaultDir() (string, error) {
	if d := os.Getenv(EnvConfigDir); d != "" {
		return d, nil
	}
	if x := os.Getenv("XDG_CONFIG_HOME"); x != "" && filepath.IsAbs(x) {
		return filepath.Join(x, "ferry"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("secret store: no configuration directory: set %s: %w", EnvConfigDir, err)
	}
	return filepath.Join(home, ".config", "ferry"), nil
}

// Open returns the store in opts.Dir, in the mode the environment selects.
// It reads no file; the first operation does.
func Open(opts Options) (*Store, error) {
	dir := opts.Dir
	if dir == "" {
		var err error
		if dir, err = DefaultDir(); err != nil {
			return nil, err
		}
	}
	s := &Store{dir: dir, stderr: opts.Stderr, workFactor: opts.ScryptWorkFactor}
	if s.workFactor <= 0 {
		s.workFactor = scryptWorkFactor
	}
	if s.stderr == nil {
		s.stderr = os.Stderr
	}
	pass, cmd := os.Getenv(EnvPassphrase), os.Getenv(EnvPassphraseCommand)
	switch {
	case pass != "" && cmd != "":
		return nil, fmt.Errorf("secret store: both %s and %s are set; set one", EnvPassphrase, EnvPassphraseCommand)
	case pass != "":
		s.mode, s.pass = ModePassphrase, New(pass)
	case cmd != "":
		s.mode, s.passCmd = ModePassphrase, cmd
	}
	return s, nil
}

// Dir returns the configuration directory.
func (s *Store) Dir() string { return s.dir }

// Mode returns the mode the environment selected.
func (s *Store) Mode() Mode { return s.mode }

// Get returns the fields of the secret name, or an error wrapping
// [ErrNotFound].
func (s *Store) Get(ctx context.Context, name string) (Fields, error) {
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	m, err := s.load(ctx)
	if err != nil {
		return nil, err
	}
	e, ok := m[name]
	if !ok {
		return nil, fmt.Errorf("secret %q: %w", name, ErrNotFound)
	}
	f := make(Fields, len(e))
	for k, v := range e {
		f[k] = New(v)
	}
	return f, nil
}

// Names returns the names of the stored secrets, sorted.
func (s *Store) Names(ctx context.Context) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, err := s.load(ctx)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	slices.Sort(names)
	return names, nil
}

// Set stores fields as the secret name, replacing any secret of that name.
func (s *Store) Set(ctx context.Context, name string, fields Fields) error {
	if err := ValidateName(name); err != nil {
		return err
	}
	if len(fields) == 0 {
		return fmt.Errorf("secret %q: no fields", name)
	}
	e := make(map[string]string, len(fields))
	for k, v := range fields {
		if k == "" {
			return fmt.Errorf("secret %q: a field has no name", name)
		}
		e[k] = v.Reveal()
	}
	return s.update(ctx, func(m map[string]map[string]string) error {
		m[name] = e
		return nil
	})
}

// SetIfAbsent stores fields as the secret name unless a secret of that name
// exists, and returns the secret stored (its own or the one found). Two
// processes creating the same secret at once end up with one value.
func (s *Store) SetIfAbsent(ctx context.Context, name string, fields Fields) (Fields, error) {
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	if len(fields) == 0 {
		return nil, fmt.Errorf("secret %q: no fields", name)
	}
	out := fields
	err := s.update(ctx, func(m map[string]map[string]string) error {
		if cur, ok := m[name]; ok {
			out = Fields{}
			for k, v := range cur {
				out[k] = New(v)
			}
			return nil
		}
		e := make(map[string]string, len(fields))
		for k, v := range fields {
			e[k] = v.Reveal()
		}
		m[name] = e
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Remove deletes the secret name, or returns an error wrapping
// [ErrNotFound].
func (s *Store) Remove(ctx context.Context, name string) error {
	if err := ValidateName(name); err != nil {
		return err
	}
	return s.update(ctx, func(m map[string]map[string]string) error {
		if _, ok := m[name]; !ok {
			return fmt.Errorf("secret %q: %w", name, ErrNotFound)
		}
		delete(m, name)
		return nil
	})
}

// storeFile is the plaintext inside secrets.age.
type storeFile struct {
	Version int                          `json:"version"`
	Secrets map[string]map[string]string `json:"secrets"`
}

// load returns the decrypted store (empty when there is none). The map is
// shared with the cache: callers must not modify it. s.mu is held.
func (s *Store) load(ctx context.Context) (map[string]map[string]string, error) {
	dfi, err := os.Stat(s.dir)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]map[string]string{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("secret store: %w", err)
	}
	if err := checkDir(s.dir, dfi); err != nil {
		return nil, err
	}
	path := filepath.Join(s.dir, StoreFile)
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]map[string]string{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("secret store: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("secret store: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("secret store: %s is not a regular file", path)
	}
	if err := checkPerm(path, fi); err != nil {
		return nil, fmt.Errorf("secret store: %w", err)
	}
	if c := s.cache; c != nil && os.SameFile(c.fi, fi) && c.fi.Size() == fi.Size() && c.fi.ModTime().Equal(fi.ModTime()) {
		return c.secrets, nil
	}
	data, err := readLimited(f, path)
	if err != nil {
		return nil, err
	}
	ids, err := s.identities(ctx)
	if err != nil {
		return nil, err
	}
	r, err := age.Decrypt(bytes.NewReader(data), ids...)
	if err != nil {
		return nil, s.decryptError(path, err)
	}
	plain, err := io.ReadAll(r)
	defer clear(plain)
	if err != nil {
		return nil, fmt.Errorf("secret store: %s is corrupt or was modified (%v)", path, err)
	}
	var sf storeFile
	if err := json.Unmarshal(plain, &sf); err != nil || sf.Version != storeVersion {
		return nil, fmt.Errorf("secret store: %s: unexpected contents (version %d); was it written by a newer ferry?", path, sf.Version)
	}
	if sf.Secrets == nil {
		sf.Secrets = map[string]map[string]string{}
	}
	s.cache = &cached{fi: fi, secrets: sf.Secrets}
	return sf.Secrets, nil
}

func (s *Store) decryptError(path string, err error) error {
	var nm *age.NoIdentityMatchError
	if !errors.As(err, &nm) {
		return fmt.Errorf("secret store: %s is corrupt or not an age file (%v)", path, err)
	}
	scrypt := slices.Contains(nm.StanzaTypes, "scrypt")
	switch {
	case s.mode == ModePassphrase && scrypt:
		return fmt.Errorf("secret store: cannot decrypt %s: wrong passphrase", path)
	case s.mode == ModePassphrase:
		return fmt.Errorf("secret store: %s is encrypted to an identity file, not a passphrase: unset %s and %s to use %s", path, EnvPassphrase, EnvPassphraseCommand, filepath.Join(s.dir, IdentityFile))
	case scrypt:
		return fmt.Errorf("secret store: %s is encrypted with a passphrase: set %s or %s", path, EnvPassphrase, EnvPassphraseCommand)
	}
	return fmt.Errorf("secret store: cannot decrypt %s: it was encrypted to an identity other than %s", path, filepath.Join(s.dir, IdentityFile))
}

// identities returns what decrypts the store in s's mode.
func (s *Store) identities(ctx context.Context) ([]age.Identity, error) {
	if s.mode == ModePassphrase {
		pass, err := s.passphrase(ctx)
		if err != nil {
			return nil, err
		}
		id, err := age.NewScryptIdentity(pass.Reveal())
		if err != nil {
			return nil, fmt.Errorf("secret store: %w", err)
		}
		return []age.Identity{id}, nil
	}
	ids, err := s.readIdentity()
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("secret store: %s is missing, and it is what decrypts %s; restore it from a backup (or, for a passphrase-encrypted store, set %s)",
			filepath.Join(s.dir, IdentityFile), filepath.Join(s.dir, StoreFile), EnvPassphrase)
	}
	if err != nil {
		return nil, err
	}
	out := make([]age.Identity, len(ids))
	for i, id := range ids {
		out[i] = id
	}
	return out, nil
}

// readIdentity reads identity.txt; the error wraps fs.ErrNotExist when it
// is missing.
func (s *Store) readIdentity() ([]*age.X25519Identity, error) {
	path := filepath.Join(s.dir, IdentityFile)
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("secret store: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("secret store: %w", err)
	}
	if err := checkPerm(path, fi); err != nil {
		return nil, fmt.Errorf("secret store: %w", err)
	}
	data, err := readLimited(f, path)
	if err != nil {
		return nil, err
	}
	defer clear(data)
	ids, err := age.ParseIdentities(bytes.NewReader(data))
	if err != nil {
		// age's parse errors do not quote the key material.
		return nil, fmt.Errorf("secret store: %s: %v", path, err)
	}
	var xs []*age.X25519Identity
	for _, id := range ids {
		x, ok := id.(*age.X25519Identity)
		if !ok {
			return nil, fmt.Errorf("secret store: %s: want age X25519 identities (AGE-SECRET-KEY-1...)", path)
		}
		xs = append(xs, x)
	}
	return xs, nil
}

// passphrase returns the passphrase, running the passphrase command the
// first time.
func (s *Store) passphrase(ctx context.Context) (Secret, error) {
	if !s.pass.IsZero() {
		return s.pass, nil
	}
	cmd := exec.CommandContext(ctx, "sh", "-c", s.passCmd)
	cmd.Stdin = nil // /dev/null: stdin may carry the secret being set
	cmd.Stderr = s.stderr
	out, err := cmd.Output()
	defer clear(out)
	if err != nil {
		return Secret{}, fmt.Errorf("secret store: %s failed: %v", EnvPassphraseCommand, err)
	}
	p := strings.TrimRight(string(out), "\r\n")
	if p == "" {
		return Secret{}, fmt.Errorf("secret store: %s printed an empty passphrase", EnvPassphraseCommand)
	}
	s.pass = New(p)
	return s.pass, nil
}

// update applies fn to the store under the store's file lock and writes
// the result atomically.
func (s *Store) update(ctx context.Context, fn func(map[string]map[string]string) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return fmt.Errorf("secret store: %w", err)
	}
	dfi, err := os.Stat(s.dir)
	if err != nil {
		return fmt.Errorf("secret store: %w", err)
	}
	if err := checkDir(s.dir, dfi); err != nil {
		return err
	}
	lockPath := filepath.Join(s.dir, LockFile)
	lf, err := os.OpenFile(lockPath, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("secret store: %w", err)
	}
	defer lf.Close()
	if err := fslock.Lock(lf); err != nil {
		return fmt.Errorf("secret store: lock: %w", err)
	}
	cur, err := s.load(ctx)
	if err != nil {
		return err
	}
	m := make(map[string]map[string]string, len(cur)+1)
	for k, v := range cur {
		m[k] = v
	}
	if err := fn(m); err != nil {
		return err
	}
	recips, err := s.recipients(ctx)
	if err != nil {
		return err
	}
	plain, err := json.Marshal(storeFile{Version: storeVersion, Secrets: m})
	if err != nil {
		return fmt.Errorf("secret store: %w", err)
	}
	defer clear(plain)
	var buf bytes.Buffer
	w, err := age.Encrypt(&buf, recips...)
	if err != nil {
		return fmt.Errorf("secret store: encrypt: %w", err)
	}
	if _, err := w.Write(plain); err != nil {
		return fmt.Errorf("secret store: encrypt: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("secret store: encrypt: %w", err)
	}
	if err := atomicfile.Write(filepath.Join(s.dir, StoreFile), buf.Bytes(), 0o600); err != nil {
		return err
	}
	s.cache = nil
	return nil
}

// recipients returns what the store is encrypted to, creating identity.txt
// in identity mode when there is none yet (there is then no store either:
// load would have failed).
func (s *Store) recipients(ctx context.Context) ([]age.Recipient, error) {
	if s.mode == ModePassphrase {
		pass, err := s.passphrase(ctx)
		if err != nil {
			return nil, err
		}
		r, err := age.NewScryptRecipient(pass.Reveal())
		if err != nil {
			return nil, fmt.Errorf("secret store: %w", err)
		}
		r.SetWorkFactor(s.workFactor)
		return []age.Recipient{r}, nil
	}
	ids, err := s.readIdentity()
	if errors.Is(err, fs.ErrNotExist) {
		id, gerr := age.GenerateX25519Identity()
		if gerr != nil {
			return nil, fmt.Errorf("secret store: generate identity: %w", gerr)
		}
		content := fmt.Sprintf("# ferry secret store identity, created %s\n# public key: %s\n# Keep a copy: without it %s cannot be decrypted.\n%s\n",
			time.Now().UTC().Format(time.RFC3339), id.Recipient(), StoreFile, id)
		if err := atomicfile.Write(filepath.Join(s.dir, IdentityFile), []byte(content), 0o600); err != nil {
			return nil, err
		}
		ids, err = []*age.X25519Identity{id}, nil
	}
	if err != nil {
		return nil, err
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("secret store: %s holds no identity", filepath.Join(s.dir, IdentityFile))
	}
	rs := make([]age.Recipient, len(ids))
	for i, id := range ids {
		rs[i] = id.Recipient()
	}
	return rs, nil
}

func checkDir(dir string, fi os.FileInfo) error {
	if !fi.IsDir() {
		return fmt.Errorf("secret store: %s is not a directory", dir)
	}
	if err := checkPerm(dir, fi); err != nil {
		return fmt.Errorf("secret store: %w", err)
	}
	return nil
}

func readLimited(f *os.File, path string) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("secret store: %w", err)
	}
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("secret store: %s is larger than %d bytes", path, maxFileSize)
	}
	return data, nil
}
