package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/ferry-dev/ferry/internal/secret"
	"github.com/ferry-dev/ferry/internal/trust"
)

// Credentials reach ferry from the AWS default chain, a profile
// (--src-profile/--dst-profile) or a named secret in ferry's encrypted store
// (--src-secret/--dst-secret), never from argv or a location: a value on the
// command line shows in process listings and shell history. "ferry secret
// set" reads values from stdin or a no-echo prompt, so no ferry process ever
// has a secret in its argv.

const safeCredentials = "store credentials with 'ferry secret set NAME' (reads stdin or prompts) and use --src-secret/--dst-secret NAME, or use --src-profile/--dst-profile or the AWS environment (AWS_ACCESS_KEY_ID, roles, SSO)"

// refusedFlags are flags other tools take credentials in. ferry accepts
// them only to refuse them with a pointer to the safe ways.
var refusedFlags = []string{
	"access-key", "secret-key",
	"src-access-key", "src-secret-key", "dst-access-key", "dst-secret-key",
	"aws-access-key-id", "aws-secret-access-key", "session-token",
	"nats-token", "nats-password",
}

// refusedFlag swallows its value: it is never stored, so it cannot be
// printed, and pflag's "invalid argument" error, which quotes the value,
// cannot happen.
type refusedFlag struct{ used bool }

func (r *refusedFlag) Set(string) error { r.used = true; return nil }
func (r *refusedFlag) String() string   { return "" }
func (r *refusedFlag) Type() string     { return "string" }

var _ pflag.Value = (*refusedFlag)(nil)

// refuseArgvCredentials adds the hidden refused flags to every command and
// fails, with exit 2 and without echoing the value, when one is used.
func refuseArgvCredentials(root *cobra.Command) {
	flags := make(map[string]*refusedFlag, len(refusedFlags))
	for _, name := range refusedFlags {
		f := &refusedFlag{}
		flags[name] = f
		root.PersistentFlags().Var(f, name, "refused: credentials are not accepted on the command line")
		_ = root.PersistentFlags().MarkHidden(name)
	}
	root.PersistentPreRunE = func(*cobra.Command, []string) error {
		for _, name := range refusedFlags {
			if flags[name].used {
				hint := safeCredentials
				if strings.HasPrefix(name, "nats-") {
					hint = "use --nats-token-file FILE, FERRY_NATS_TOKEN, --nats-creds or --nats-nkey"
				}
				return usageErr("--%s: credentials are not accepted on the command line (they would show in process listings and shell history); %s", name, hint)
			}
		}
		return nil
	}
}

// scryptWorkFactor is passed to the secret store; 0 is its default. Tests
// lower it.
var scryptWorkFactor int

// openSecrets opens the secret store the environment names; stderr (nil:
// os.Stderr) receives the passphrase command's messages.
func openSecrets(stderr io.Writer) (*secret.Store, error) {
	return secret.Open(secret.Options{Stderr: stderr, ScryptWorkFactor: scryptWorkFactor})
}

// registerSecretFlags adds --src-secret and --dst-secret.
func registerSecretFlags(fl *pflag.FlagSet, src, dst *side) {
	fl.StringVar(&src.secret, "src-secret", "", "name of a secret in ferry's store (see 'ferry secret') holding the source's S3 credentials")
	fl.StringVar(&dst.secret, "dst-secret", "", "name of a secret in ferry's store (see 'ferry secret') holding the destination's S3 credentials")
}

// sideCredentials returns the credentials of --src-secret/--dst-secret, or
// nil to use the profile or the AWS default chain.
func sideCredentials(ctx context.Context, role string, sd side) (aws.CredentialsProvider, error) {
	if sd.secret == "" {
		return nil, nil
	}
	pre := "--src-"
	if role == "destination" {
		pre = "--dst-"
	}
	if sd.profile != "" {
		return nil, usageErr("%ssecret and %sprofile both name the %s's credentials; use one", pre, pre, role)
	}
	if err := secret.ValidateName(sd.secret); err != nil {
		return nil, usageErr("%ssecret: %v", pre, err)
	}
	st, err := openSecrets(nil)
	if err != nil {
		return nil, usageErr("%ssecret %s: %v", pre, sd.secret, err)
	}
	p, err := st.AWSCredentials(ctx, sd.secret)
	if errors.Is(err, secret.ErrNotFound) {
		return nil, usageErr("%ssecret %s: no such secret in %s; store it with 'ferry secret set %s'", pre, sd.secret, st.Dir(), sd.secret)
	}
	if err != nil {
		return nil, usageErr("%ssecret %s: %v", pre, sd.secret, err)
	}
	return p, nil
}

func newSecretCmd(stdio Stdio) *cobra.Command {
	c := &cobra.Command{
		Use:   "secret",
		Short: "Manage ferry's encrypted store of S3 credentials",
		Long: `ferry keeps named S3 credentials in an age-encrypted file in $FERRY_CONFIG_DIR
(default $XDG_CONFIG_HOME/ferry or ~/.config/ferry), encrypted to identity.txt
there, or to a passphrase when FERRY_SECRETS_PASSPHRASE or
FERRY_SECRETS_PASSPHRASE_COMMAND is set. Use a secret with --src-secret NAME or
--dst-secret NAME. Values are read from stdin or a no-echo prompt, never from
arguments. See docs/secrets.md.`,
	}
	c.AddCommand(newSecretSetCmd(stdio), newSecretListCmd(stdio), newSecretRmCmd(stdio))
	return c
}

func newSecretSetCmd(stdio Stdio) *cobra.Command {
	return &cobra.Command{
		Use:   "set NAME",
		Short: "Store S3 credentials as NAME (read from stdin, or prompted for without echo)",
		Long: `Store S3 credentials as NAME, replacing any secret of that name (rotation:
running jobs pick the new value up within a minute).

On a terminal ferry prompts for each value without echo. Otherwise it reads
stdin: credentials-file lines

  aws_access_key_id = AKIA...
  aws_secret_access_key = ...
  aws_session_token = ...        (optional)

or the JSON of 'aws configure export-credentials' or 'aws sts assume-role'.`,
		Example: `  ferry secret set prod-dst                       # prompts
  aws configure export-credentials --profile prod | ferry secret set prod
  ferry secret set minio < minio-credentials.ini`,
		Args: exactArgs(1, "NAME"),
		RunE: func(c *cobra.Command, args []string) error {
			name := args[0]
			if err := secret.ValidateName(name); err != nil {
				return usageErr("%v", err)
			}
			st, err := openSecrets(stdio.Err)
			if err != nil {
				return usageErr("%v", err)
			}
			fields, err := readCredential(stdio)
			if err != nil {
				return usageErr("secret set %s: %v", name, err)
			}
			if err := st.Set(c.Context(), name, fields); err != nil {
				return usageErr("secret set %s: %v", name, err)
			}
			fmt.Fprintf(stdio.Out, "saved secret %s in %s (%s mode)\n", name, st.Dir(), st.Mode())
			return nil
		},
	}
}

func newSecretListCmd(stdio Stdio) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "Print the names of the stored secrets, one a line (never their values)",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(c *cobra.Command, _ []string) error {
			st, err := openSecrets(stdio.Err)
			if err != nil {
				return usageErr("%v", err)
			}
			names, err := st.Names(c.Context())
			if err != nil {
				return usageErr("secret list: %v", err)
			}
			for _, n := range names {
				fmt.Fprintln(stdio.Out, n)
			}
			return nil
		},
	}
}

// ownSecrets are the secrets ferry keeps for itself, and what breaks
// without them.
var ownSecrets = map[string]string{
	stateKeyName:        "it encrypts the embedded job queue and the job snapshots in the state directory: every job command fails afterwards (\"was it written with another encryption key?\") until the state directory is deleted, losing every job",
	trust.KeySecretName: "it signs this machine's jobs and work: a new key is created on next use, and workers that trust the old public key (--trust) refuse everything this machine publishes until they are given the new one ('ferry key show')",
}

func newSecretRmCmd(stdio Stdio) *cobra.Command {
	var force bool
	c := &cobra.Command{
		Use:   "rm NAME",
		Short: "Remove the secret NAME",
		Args:  exactArgs(1, "NAME"),
		RunE: func(c *cobra.Command, args []string) error {
			name := args[0]
			if err := secret.ValidateName(name); err != nil {
				return usageErr("%v", err)
			}
			if why, own := ownSecrets[name]; own && !force {
				return usageErr("secret rm %s: refused: this is ferry's own key; %s. Pass --force to remove it anyway", name, why)
			}
			st, err := openSecrets(stdio.Err)
			if err != nil {
				return usageErr("%v", err)
			}
			if err := st.Remove(c.Context(), name); errors.Is(err, secret.ErrNotFound) {
				return usageErr("secret rm %s: no such secret in %s", name, st.Dir())
			} else if err != nil {
				return usageErr("secret rm %s: %v", name, err)
			}
			fmt.Fprintf(stdio.Out, "removed secret %s\n", name)
			return nil
		},
	}
	c.Flags().BoolVar(&force, "force", false, "remove one of ferry's own keys (ferry-state-key, ferry-signing-key) too")
	return c
}

// readCredential prompts on a terminal, else parses stdin.
func readCredential(stdio Stdio) (secret.Fields, error) {
	if f, ok := stdio.In.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		return promptCredential(int(f.Fd()), stdio.Err)
	}
	return parseCredential(stdio.In)
}

func promptCredential(fd int, w io.Writer) (secret.Fields, error) {
	fields := secret.Fields{}
	for _, p := range []struct {
		field, prompt string
		optional      bool
	}{
		{secret.FieldAccessKeyID, "AWS access key ID: ", false},
		{secret.FieldSecretAccessKey, "AWS secret access key: ", false},
		{secret.FieldSessionToken, "AWS session token (Enter for none): ", true},
	} {
		fmt.Fprint(w, p.prompt)
		b, err := term.ReadPassword(fd)
		fmt.Fprintln(w)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", p.field, err)
		}
		v := strings.TrimSpace(string(b))
		clear(b)
		if v == "" {
			if p.optional {
				continue
			}
			return nil, fmt.Errorf("no %s given", p.field)
		}
		fields[p.field] = secret.New(v)
	}
	return fields, nil
}

// maxCredentialInput bounds what secret set reads from stdin.
const maxCredentialInput = 64 << 10

// credentialKeys maps the names accepted on stdin to store fields.
var credentialKeys = map[string]string{
	"aws_access_key_id":     secret.FieldAccessKeyID,
	"access_key_id":         secret.FieldAccessKeyID,
	"aws_secret_access_key": secret.FieldSecretAccessKey,
	"secret_access_key":     secret.FieldSecretAccessKey,
	"aws_session_token":     secret.FieldSessionToken,
	"session_token":         secret.FieldSessionToken,
}

// parseCredential reads credentials-file lines or AWS CLI JSON. Its errors
// name line numbers and key names, never values or whole lines.
func parseCredential(r io.Reader) (secret.Fields, error) {
	if r == nil {
		r = bytes.NewReader(nil)
	}
	data, err := io.ReadAll(io.LimitReader(r, maxCredentialInput+1))
	defer clear(data)
	if err != nil {
		return nil, fmt.Errorf("read stdin: %w", err)
	}
	if len(data) > maxCredentialInput {
		return nil, fmt.Errorf("stdin: more than %d bytes", maxCredentialInput)
	}
	if t := bytes.TrimSpace(data); len(t) > 0 && t[0] == '{' {
		return parseCredentialJSON(t)
	}
	fields := secret.Fields{}
	sections := 0
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), maxCredentialInput)
	for n := 1; sc.Scan(); n++ {
		ln := strings.TrimSpace(sc.Text())
		switch {
		case ln == "" || ln[0] == '#' || ln[0] == ';':
			continue
		case ln[0] == '[':
			if sections++; sections > 1 {
				return nil, fmt.Errorf("stdin line %d: a second [profile] section; pipe the credentials of one", n)
			}
			continue
		}
		k, v, ok := strings.Cut(ln, "=")
		if !ok {
			return nil, fmt.Errorf("stdin line %d: want 'name = value'", n)
		}
		field, known := credentialKeys[strings.ToLower(strings.TrimSpace(k))]
		if !known {
			return nil, fmt.Errorf("stdin line %d: unknown name (want aws_access_key_id, aws_secret_access_key or aws_session_token)", n)
		}
		if _, dup := fields[field]; dup {
			return nil, fmt.Errorf("stdin line %d: %s given twice", n, field)
		}
		if v = strings.TrimSpace(v); v != "" {
			fields[field] = secret.New(v)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read stdin: %w", err)
	}
	return checkCredential(fields)
}

// parseCredentialJSON accepts the output of 'aws configure
// export-credentials' (credential_process format) and of 'aws sts
// assume-role' ({"Credentials": {...}}).
func parseCredentialJSON(data []byte) (secret.Fields, error) {
	type creds struct {
		AccessKeyID     string `json:"AccessKeyId"`
		SecretAccessKey string `json:"SecretAccessKey"`
		SessionToken    string `json:"SessionToken"`
	}
	var v struct {
		creds
		Credentials *creds `json:"Credentials"`
	}
	if json.Unmarshal(data, &v) != nil { // the error could quote input
		return nil, errors.New("stdin: not valid JSON credentials (want AccessKeyId, SecretAccessKey, SessionToken)")
	}
	c := v.creds
	if v.Credentials != nil {
		c = *v.Credentials
	}
	fields := secret.Fields{}
	for k, val := range map[string]string{secret.FieldAccessKeyID: c.AccessKeyID, secret.FieldSecretAccessKey: c.SecretAccessKey, secret.FieldSessionToken: c.SessionToken} {
		if val = strings.TrimSpace(val); val != "" {
			fields[k] = secret.New(val)
		}
	}
	return checkCredential(fields)
}

func checkCredential(f secret.Fields) (secret.Fields, error) {
	if len(f) == 0 {
		return nil, errors.New("no credentials on stdin: pipe 'aws_access_key_id = ...' and 'aws_secret_access_key = ...' lines, or run on a terminal to be prompted")
	}
	for _, k := range []string{secret.FieldAccessKeyID, secret.FieldSecretAccessKey} {
		if _, ok := f[k]; !ok {
			return nil, fmt.Errorf("stdin: no aws_%s", k)
		}
	}
	return f, nil
}
