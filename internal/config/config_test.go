package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	good := `# ferry remotes
remotes:
  backup:
    endpoint: https://minio.example:9000
    region: eu-central-1
    secret: backup-keys
    ca_bundle: /etc/ca.pem
    allow_insecure_http: false
  lab_2:
    endpoint: http://10.1.2.3:9000
    allow_insecure_http: true
`
	c, err := Parse("config.yaml", []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	want := Remote{Endpoint: "https://minio.example:9000", Region: "eu-central-1", Secret: "backup-keys", CABundle: "/etc/ca.pem"}
	if r, ok := c.Remote("backup"); !ok || r != want {
		t.Fatalf("backup = %+v, %v", r, ok)
	}
	if r, _ := c.Remote("lab_2"); !r.AllowInsecureHTTP {
		t.Fatalf("lab_2 = %+v", r)
	}
	if _, ok := c.Remote("nope"); ok {
		t.Fatal("undefined remote found")
	}
	for _, empty := range []string{"", "# nothing\n", "---\n", "remotes:\n", "remotes: {}\n"} {
		if c, err := Parse("config.yaml", []byte(empty)); err != nil || len(c.Remotes) != 0 {
			t.Fatalf("%q: %v %v", empty, c, err)
		}
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, data, want string
	}{
		{"unknown field", "remotes:\n  a:\n    endpoint: https://x\n\n\n\n    endpiont: https://y\n",
			`config.yaml:7: field "endpiont" not found in type config.Remote`},
		{"unknown top-level field", "remote:\n  a: {}\n", `config.yaml:1: field "remote" not found`},
		{"wrong type bool", "remotes:\n  a:\n    allow_insecure_http: sure\n", "config.yaml:3: cannot unmarshal !!str `sure` into bool"},
		{"wrong type map", "remotes:\n  a: https://x\n", "config.yaml:2: cannot unmarshal !!str"},
		{"wrong type top", "- a\n- b\n", "config.yaml:1: cannot unmarshal !!seq"},
		{"wrong type string", "remotes:\n  a:\n    region: [eu]\n", "config.yaml:3: cannot unmarshal !!seq into string"},
		{"syntax", "remotes:\n  a:\n    endpoint: x\n   region: y\n", "config.yaml:1: did not find expected key"}, // yaml.v3 names the line of the enclosing mapping
		{"tab indent", "remotes:\n\ta: {}\n", "config.yaml:2:"},
		{"duplicate key", "remotes:\n  a: {}\n  a: {}\n", `config.yaml:3: mapping key "a" already defined at line 2`},
		{"two documents", "remotes: {}\n---\nremotes: {}\n", "config.yaml:2: more than one YAML document"},
		{"bad remote name", "remotes:\n  ok: {}\n  Bad.Name: {}\n", `config.yaml:3: remote "Bad.Name": invalid name`},
		{"reserved remote name", "remotes:\n  s3: {}\n", `config.yaml:2: remote "s3": invalid name`},
		{"bad endpoint", "remotes:\n  a:\n    region: x\n    endpoint: ftp://h\n", `config.yaml:4: remote "a": endpoint "ftp://h": unknown scheme`},
		{"endpoint without host", "remotes:\n  a:\n    endpoint: minio:9000\n", `config.yaml:3: remote "a": endpoint "minio:9000": want a URL`},
		{"nats endpoint", "remotes:\n  a:\n    endpoint: tls://h:4222\n", `config.yaml:3: remote "a": endpoint "tls://h:4222": want an http:// or https:// URL`},
		{"bad region", "remotes:\n  a:\n    region: Eu West\n", `config.yaml:3: remote "a": invalid region`},
		{"profile and secret", "remotes:\n  a:\n    profile: p\n    secret: s\n", `config.yaml:4: remote "a": profile and secret both`},
		{"several errors", "remotes:\n  a:\n    x: 1\n    y: 2\n", `config.yaml:3: field "x" not found in type config.Remote (and 1 more errors)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("config.yaml", []byte(tt.data))
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.HasPrefix(err.Error(), tt.want) {
				t.Fatalf("error\n  %s\nwant prefix\n  %s", err, tt.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error has more than one line: %q", err)
			}
		})
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("FERRY_CONFIG_DIR", dir)
	c, err := Load()
	if err != nil || c == nil || len(c.Remotes) != 0 {
		t.Fatalf("missing file: %v %v", c, err)
	}
	if _, err := LoadFile(filepath.Join(dir, FileName)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("LoadFile of a missing file: %v", err)
	}
	path := filepath.Join(dir, FileName)
	if err := os.WriteFile(path, []byte("remotes:\n  a:\n    ca_bundle: certs/ca.pem\n  b:\n    ca_bundle: /abs/ca.pem\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err = Load()
	if err != nil {
		t.Fatal(err)
	}
	if c.Path != path || c.Remotes["a"].CABundle != filepath.Join(dir, "certs/ca.pem") || c.Remotes["b"].CABundle != "/abs/ca.pem" {
		t.Fatalf("%+v", c)
	}
	if err := os.WriteFile(path, []byte("remotes:\n  a:\n    endpoit: x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(); err == nil || !strings.HasPrefix(err.Error(), path+":3: ") {
		t.Fatalf("error %v does not name %s:3", err, path)
	}
	if err := os.WriteFile(path, make([]byte, maxFileSize+1), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("huge file: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"remotes:\n  a:\n    endpoint: https://x\n",
		"remotes:\n  a:\n    endpiont: https://x\n",
		"remotes: {a: {allow_insecure_http: yes}}",
		"- 1\n",
		"a: &x [*x]\n",
		"remotes:\n  a: {}\n---\n",
		"",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("f.yaml", data)
		if err != nil {
			msg := err.Error()
			if !strings.HasPrefix(msg, "f.yaml:") || strings.ContainsAny(msg, "\n") {
				t.Fatalf("error %q: want one line starting with the file name", msg)
			}
			return
		}
		for _, n := range c.Names() {
			if !RemoteNameRE.MatchString(n) {
				t.Fatalf("accepted remote name %q", n)
			}
		}
	})
}

func TestParseDefaults(t *testing.T) {
	c, err := Parse("config.yaml", []byte("defaults:\n  concurrency: 64\n  include: ['*.jpg', '*.png']\n  no-progress: true\n"))
	if err != nil {
		t.Fatal(err)
	}
	if v := c.Defaults["concurrency"]; len(v.Values) != 1 || v.Values[0] != "64" || v.Line != 2 {
		t.Fatalf("concurrency = %+v", v)
	}
	if v := c.Defaults["include"]; strings.Join(v.Values, ",") != "*.jpg,*.png" {
		t.Fatalf("include = %+v", v)
	}
	for data, want := range map[string]string{
		"defaults:\n  --concurrency: 4\n": `config.yaml:2: defaults: "--concurrency" is not a flag name`,
		"defaults:\n  include: {a: b}\n":  "config.yaml",
		"defaults:\n  include: [[a]]\n":   "want a value or a list of values",
		"defaults:\n  a: 1\n  a: 2\n":     `mapping key "a" already defined`,
		"defaults: [concurrency]\n":       "config.yaml:1:",
	} {
		if _, err := Parse("config.yaml", []byte(data)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want %q", data, err, want)
		}
	}
}
