package secret

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// CredentialRefresh is how long credentials from [Store.AWSCredentials]
// are used before the store is read again: one minute, or
// $FERRY_CREDENTIAL_REFRESH (a Go duration, 1s to 1h) when set.
var CredentialRefresh = refreshFromEnv()

func refreshFromEnv() time.Duration {
	if v := os.Getenv("FERRY_CREDENTIAL_REFRESH"); v != "" {
		if d, err := time.ParseDuration(v); err == nil && d >= time.Second && d <= time.Hour {
			return d
		}
	}
	return time.Minute
}

// AWSCredentials returns a credentials provider for the S3 credential
// secret name (fields access_key_id, secret_access_key and, optionally,
// session_token). It reads the secret once now, so that a missing or
// malformed secret fails here, and then again whenever the credentials it
// handed out expire, [CredentialRefresh] after they were read: a secret
// rotated with "ferry secret set" reaches a running job within that time.
// Re-reading is cheap while the store file is unchanged (it is decrypted
// again only when it was replaced). If a refresh fails (the secret was
// removed, the store was damaged) the requests that need credentials fail
// with that error.
//
// The provider is an [aws.CredentialsCache], safe for concurrent use.
func (s *Store) AWSCredentials(ctx context.Context, name string) (aws.CredentialsProvider, error) {
	p := &awsProvider{s: s, name: name}
	if _, err := p.Retrieve(ctx); err != nil {
		return nil, err
	}
	return aws.NewCredentialsCache(p), nil
}

type awsProvider struct {
	s    *Store
	name string
}

func (p *awsProvider) Retrieve(ctx context.Context) (aws.Credentials, error) {
	f, err := p.s.Get(ctx, p.name)
	if err != nil {
		return aws.Credentials{}, err
	}
	for _, k := range []string{FieldAccessKeyID, FieldSecretAccessKey} {
		if f[k].IsZero() {
			return aws.Credentials{}, fmt.Errorf("secret %q is not an S3 credential: it has no %s (store one with 'ferry secret set %s')", p.name, k, p.name)
		}
	}
	return aws.Credentials{
		AccessKeyID:     f[FieldAccessKeyID].Reveal(),
		SecretAccessKey: f[FieldSecretAccessKey].Reveal(),
		SessionToken:    f[FieldSessionToken].Reveal(),
		Source:          "ferry secret " + p.name,
		CanExpire:       true,
		Expires:         time.Now().Add(CredentialRefresh),
	}, nil
}
