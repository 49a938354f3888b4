package sides

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferry-dev/ferry/internal/job"
	"github.com/ferry-dev/ferry/internal/location"
)

func localSide(t *testing.T, p string) Config {
	t.Helper()
	loc, err := location.Parse(p)
	if err != nil {
		t.Fatal(err)
	}
	return Config{Location: loc}
}

func s3side(t *testing.T, endpoint, profile, secret string) Config {
	t.Helper()
	loc, err := location.Parse("s3://bucket/prefix/")
	if err != nil {
		t.Fatal(err)
	}
	return Config{Location: loc, Endpoint: endpoint, Profile: profile, Secret: secret}
}

func TestPolicy(t *testing.T) {
	root := t.TempDir()
	allowed := filepath.Join(root, "allowed")
	other := filepath.Join(root, "other")
	for _, d := range []string{allowed, other} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	// A link inside the allowed directory that points out of it.
	if err := os.Symlink(other, filepath.Join(allowed, "escape")); err != nil {
		t.Fatal(err)
	}
	p, err := NewPolicy([]string{allowed}, []string{"https://minio.example:9000/"}, []string{"team"}, []string{"backup"})
	if err != nil {
		t.Fatal(err)
	}
	none := &Policy{}
	for _, tc := range []struct {
		name   string
		p      *Policy
		c      Config
		refuse string // "" = allowed
	}{
		{"no policy allows all", nil, localSide(t, other), ""},
		{"local without --allow-local", none, localSide(t, allowed), "without --allow-local"},
		{"local allowed dir", p, localSide(t, allowed), ""},
		{"local below allowed", p, localSide(t, filepath.Join(allowed, "a", "b")), ""},
		{"local outside", p, localSide(t, other), "not below a directory"},
		{"local parent escape", p, localSide(t, allowed+"/../other"), "not below a directory"},
		{"local through a symlink", p, localSide(t, filepath.Join(allowed, "escape", "x")), "not below a directory"},
		{"prefix is not a parent", p, localSide(t, allowed+"x"), "not below a directory"},
		{"aws default", none, s3side(t, "", "", ""), ""},
		{"aws regional endpoint", none, s3side(t, "https://s3.eu-west-1.amazonaws.com", "", ""), ""},
		{"aws over http", none, s3side(t, "http://s3.amazonaws.com", "", ""), "not allowed"},
		{"other endpoint", none, s3side(t, "https://evil.example", "", ""), "endpoint https://evil.example is not allowed"},
		{"allowed endpoint", p, s3side(t, "https://MINIO.example:9000", "", ""), ""},
		{"allowed endpoint other port", p, s3side(t, "https://minio.example:9001", "", ""), "not allowed"},
		{"allowed endpoint over http", p, s3side(t, "http://minio.example:9000", "", ""), "not allowed"},
		{"profile refused", none, s3side(t, "", "backup", ""), `profile "backup"`},
		{"profile allowed", p, s3side(t, "", "backup", ""), ""},
		{"secret refused", p, s3side(t, "", "", "other"), `secret "other"`},
		{"secret allowed", p, s3side(t, "", "", "team"), ""},
		{"endpoint with a query is not echoed", none, s3side(t, "https://x.example/?token=hunter2", "", ""), "endpoint"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.p.Check(Destination, tc.c)
			if tc.refuse == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("allowed, want refused with %q", tc.refuse)
			}
			if ClassOf(err) != Refused || !errors.Is(err, ErrRefused) {
				t.Errorf("class %q, errors.Is(ErrRefused) %v", ClassOf(err), errors.Is(err, ErrRefused))
			}
			if !strings.Contains(err.Error(), tc.refuse) || strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q: want one line with %q, no secret", err, tc.refuse)
			}
			if !strings.HasPrefix(err.Error(), "destination ") {
				t.Errorf("error %q does not name the side", err)
			}
		})
	}
	// A CA bundle only with an endpoint named with --allow-endpoint.
	c := s3side(t, "", "", "")
	c.CABundle = "/etc/shadow"
	if err := none.Check(Source, c); ClassOf(err) != Refused {
		t.Errorf("CA bundle on the default endpoint: %v", err)
	}
	c.Endpoint = "https://minio.example:9000"
	if err := p.Check(Source, c); err != nil {
		t.Errorf("CA bundle on an allowed endpoint: %v", err)
	}
}

func TestNewPolicyBadInput(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		local, endpoints, secrets, profiles []string
		want                                string
	}{
		{local: []string{filepath.Join(dir, "missing")}, want: "--allow-local"},
		{local: []string{file}, want: "not a directory"},
		{endpoints: []string{"minio:9000"}, want: "--allow-endpoint"},
		{endpoints: []string{"https://h/?k=secret"}, want: "--allow-endpoint"},
		{secrets: []string{"../x"}, want: "--allow-secret"},
		{profiles: []string{"a b"}, want: "--allow-profile"},
	} {
		_, err := NewPolicy(tc.local, tc.endpoints, tc.secrets, tc.profiles)
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "secret\"") {
			t.Errorf("NewPolicy(%v %v %v %v) = %v, want an error naming %s", tc.local, tc.endpoints, tc.secrets, tc.profiles, err, tc.want)
		}
	}
}

func TestOpenJobRefusedTouchesNothing(t *testing.T) {
	dir := t.TempDir()
	dst := filepath.Join(dir, "dst")
	spec := job.Spec{Src: job.Side{Location: dir}, Dst: job.Side{Location: dst}}
	_, _, err := OpenJob(context.Background(), spec, Options{Policy: &Policy{}})
	var e *Error
	if !errors.As(err, &e) || e.Class != Refused || e.Role != Source {
		t.Fatalf("OpenJob = %v, want the source refused", err)
	}
	// The destination is checked before anything is created.
	p, err := NewPolicy([]string{filepath.Join(dir)}, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	spec.Dst.Location = filepath.Join(t.TempDir(), "elsewhere")
	if _, _, err := OpenJob(context.Background(), spec, Options{Policy: p}); ClassOf(err) != Refused {
		t.Fatalf("OpenJob = %v, want the destination refused", err)
	}
	if _, err := os.Stat(spec.Dst.Location); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("refused destination was created: %v", err)
	}
	spec.Dst.Location = dst
	src, d, err := OpenJob(context.Background(), spec, Options{Policy: p})
	if err != nil || src == nil || d == nil {
		t.Fatalf("allowed job: %v", err)
	}
}

func TestErrorClasses(t *testing.T) {
	dir := t.TempDir()
	_, err := Open(context.Background(), Source, localSide(t, filepath.Join(dir, "missing")), Options{})
	var e *Error
	if !errors.As(err, &e) || e.Class != NotFound || e.Role != Source {
		t.Errorf("missing source dir: %v (class %q)", err, ClassOf(err))
	}
	_, err = Open(context.Background(), Destination, localSide(t, filepath.Join(dir, "a", "b")), Options{})
	if ClassOf(err) != NotFound {
		t.Errorf("missing destination parent: %v", err)
	}
	c := s3side(t, "", "p", "s")
	if _, err := Open(context.Background(), Source, c, Options{}); ClassOf(err) != Invalid {
		t.Errorf("profile and secret: %v", err)
	}
	if _, err := FromSpec(Source, job.Side{Location: "s3://"}); ClassOf(err) != Invalid {
		t.Errorf("bad location: %v", err)
	}
	w := (&Error{Role: Destination, Location: "s3://b/"}).Where()
	if w != "destination s3://b/ at the default AWS endpoint" {
		t.Errorf("Where = %q", w)
	}
}

// A directory swapped for a symbolic link after the policy check (the
// window between Check and opening) cannot take the job outside the
// allowed directory: the store is opened from inside it.
func TestPolicySwapAfterCheck(t *testing.T) {
	root := t.TempDir()
	allowed, outside := filepath.Join(root, "allowed"), filepath.Join(root, "outside")
	sub := filepath.Join(allowed, "sub")
	for _, d := range []string{allowed, outside, sub} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(outside, "secret"), []byte("s"), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := NewPolicy([]string{allowed}, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := localSide(t, sub)
	if err := p.Check(Source, c); err != nil {
		t.Fatalf("check: %v", err)
	}
	// The swap.
	if err := os.Remove(sub); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, sub); err != nil {
		t.Fatal(err)
	}
	if r, err := p.openConfined(sub, false); err == nil {
		r.Close()
		t.Fatal("opened a path swapped for a link out of the allowed directory")
	}
	// The same for a destination created after the check.
	newDst := filepath.Join(sub, "new")
	if r, err := p.openConfined(newDst, true); err == nil {
		r.Close()
		t.Fatal("created a destination through a link out of the allowed directory")
	}
	if _, err := os.Stat(filepath.Join(outside, "new")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a directory was made outside: %v", err)
	}

	// Without a swap the confined store reads and creates as usual.
	if err := os.Remove(sub); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(sub, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(sub, "k"), []byte("v"), 0o600); err != nil {
		t.Fatal(err)
	}
	o, err := Open(context.Background(), Source, c, Options{Policy: p})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	defer o.Store.(interface{ Close() error }).Close()
	a, err := o.Store.Stat(context.Background(), "k")
	if err != nil || a.Size != 1 {
		t.Fatalf("stat k: %+v %v", a, err)
	}
	d, err := Open(context.Background(), Destination, localSide(t, filepath.Join(sub, "made")), Options{Policy: p})
	if err != nil || !d.Missing {
		t.Fatalf("open missing destination: %+v %v", d, err)
	}
	if err := d.Create(); err != nil {
		t.Fatalf("create: %v", err)
	}
	defer d.Store.(interface{ Close() error }).Close()
	if fi, err := os.Stat(filepath.Join(sub, "made")); err != nil || !fi.IsDir() {
		t.Fatalf("destination not made: %v", err)
	}
}
